"""End to end: the feed and sitemap spiders, the article spider's load-more feed, fetch state.

Real `scrapy crawl` runs against the fixture site (home page, listings, RSS, sitemaps, load-more
answers, articles) on 127.0.0.1; the server's request log says what was fetched.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import CrawlResult, SiteServer, scrapy_crawl

from rsarchive.extract.feeds import parse_feed
from rsarchive.extract.loadmore import parse_load_more

LISTINGS = {"RSARCHIVE_FEED_LISTINGS": "/europe/,/tag/nato/"}
ARTICLE_CASES = (
    "drift-headline", "wrong-charset", "polls-sidebar", "empty-feed", "inline-media",
    "invalid-jsonld", "two-authors", "us-strikes-iraq", "truncated", "seed",
)  # fmt: skip
LISTING_PATHS = {"/", "/europe/", "/europe/page/2/", "/tag/nato/", "/tag/nato/page/2/"}


def kind(path: str) -> str:
    """What a requested path is, for counting the server's log."""
    path = path.split("?", 1)[0]
    if path == "/robots.txt":
        return "robots"
    if path in ("/feed/", "/feeds/feed.rss"):
        return "feeds"
    if path.startswith("/feeds/sitemaps/"):
        return "sitemaps"
    if path.startswith("/res/load_more_posts/"):
        return "load-more"
    if path in LISTING_PATHS or path.rstrip("/") + "/" in LISTING_PATHS:
        return "listings"
    return "articles"


def counts(requests: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for path in requests:
        out[kind(path)] = out.get(kind(path), 0) + 1
    return out


def article_paths(server: SiteServer) -> list[str]:
    """Article paths requested, normalised (a page may write a link with or without its "/")."""
    return [p.rstrip("/") for p in server.requests if kind(p) == "articles"]


def raw_path(server: SiteServer, case: str) -> str:
    """The path of a case as the site links to it (what an override must be keyed by)."""
    return urlsplit(server.page_url(case)).path


def path_of(server: SiteServer, case: str) -> str:
    """The normalised path of a case: its archive key is the site URL plus this."""
    return raw_path(server, case).rstrip("/")


def stats_of_last_run(result: CrawlResult) -> dict:
    (raw,) = result.rows("SELECT stats FROM crawl_runs ORDER BY id DESC LIMIT 1")[0]
    return json.loads(raw)


def feed(server: SiteServer, db: Path, *args: str, **settings: str) -> CrawlResult:
    return scrapy_crawl("feed", db, server.url, *args, settings={**LISTINGS, **settings})


def titles(server: SiteServer) -> set[str]:
    out = set()
    for case in ARTICLE_CASES:
        expected = json.loads((server.site.root / case / "expected.json").read_text("utf-8"))
        out.add(expected["article"]["title"])
    return out


# -- the feed spider -----------------------------------------------------------------------------


def test_feed_crawl_archives_every_article_once_and_a_rerun_fetches_none(site_server, tmp_path):
    db = tmp_path / "a.db"
    first = feed(site_server, db)
    assert first.returncode == 0, first.log
    assert {t for (t,) in first.rows("SELECT title FROM articles")} == titles(site_server)
    # Each article fetched once, though RSS, the home page and two listings all name some twice.
    fetched = article_paths(site_server)
    assert sorted(fetched) == sorted(path_of(site_server, c) for c in ARTICLE_CASES)
    assert counts(site_server.requests) == {
        "robots": 1, "feeds": 2, "listings": 5, "load-more": 2, "articles": 10,
    }  # fmt: skip
    # The home page's feed: 4 teasers in its HTML, then 3 + 3 from load-more, in order.
    home = first.rows(
        "SELECT position, url FROM teasers WHERE page_url = ? ORDER BY position",
        f"{site_server.url}/",
    )
    assert [p for p, _ in home] == list(range(10))
    assert {u for _, u in home} == {u for (u,) in first.rows("SELECT url FROM articles")}
    assert first.rows("SELECT count(*) FROM fetch_state WHERE failures = 0") == [(15,)]
    assert first.rows("PRAGMA integrity_check") == [("ok",)]

    site_server.requests.clear()
    second = feed(site_server, db)
    assert second.returncode == 0, second.log
    assert article_paths(site_server) == []
    assert counts(site_server.requests) == {"robots": 1, "feeds": 2, "listings": 3}
    assert second.log.count("caught up (a page with nothing new)") == 3
    stats = stats_of_last_run(second)
    assert stats["rsarchive/feed_caught_up"] == 3
    assert "rsarchive/articles_new" not in stats


def test_named_articles_last_checked_long_ago_are_asked_again_conditionally(site_server, tmp_path):
    db = tmp_path / "a.db"
    assert feed(site_server, db).returncode == 0
    site_server.requests.clear()
    site_server.request_headers.clear()
    # Every check two hours ago, against a recheck age of one. (Not a recheck age of a tick:
    # check times are kept to the second, so a second run starting within the second after the
    # first one's last checks found those checks recent.)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE fetch_state SET last_attempt_at = strftime('%Y-%m-%dT%H:%M:%SZ', "
            "last_attempt_at, '-2 hours')"
        )
    again = feed(site_server, db, RSARCHIVE_FEED_RECHECK_HOURS="1")
    assert again.returncode == 0, again.log
    # RSS names 6 articles; the first pages of the listings one more (the home page's 4 are in
    # RSS). Rechecks are not news: the walks stop at their first pages all the same.
    rechecked = article_paths(site_server)
    assert len(rechecked) == 7
    assert counts(site_server.requests)["listings"] == 3
    asked = [h for p, h in zip(site_server.requests, site_server.request_headers, strict=True)
             if kind(p) == "articles"]  # fmt: skip
    assert all(h.get("If-None-Match") for h in asked)
    stats = stats_of_last_run(again)
    assert stats["rsarchive/not_modified"] == 7
    assert stats["rsarchive/articles_requested/recheck"] == 7
    assert again.rows("SELECT count(*) FROM revisions") == [(10,)]
    assert again.rows("SELECT count(*) FROM fetch_state WHERE last_status = 304") == [(7,)]


def rss_with_date(server: SiteServer, link_part: str, new_date: str) -> bytes:
    """The fixture RSS, with one item's pubDate replaced."""
    _, _, body = server.site.respond("/feeds/feed.rss", origin=server.url)
    text = body.decode()
    start = text.index(link_part)
    a = text.index("<pubDate>", start)
    b = text.index("</pubDate>", a)
    return (text[: a + 9] + new_date + text[b:]).encode()


def test_a_newer_rss_date_asks_conditionally_304_is_no_failure_and_a_change_is_stored(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    assert feed(site_server, db).returncode == 0
    path = path_of(site_server, "wrong-charset")
    raw = raw_path(site_server, "wrong-charset")
    rss = (200, {"Content-Type": "application/rss+xml"}, b"")
    rss = (*rss[:2], rss_with_date(site_server, "ukraine-grain-corridor", "Mon, 02 Dec 2024"))
    site_server.overrides["/feeds/feed.rss"] = rss

    # Dated newer, but the page is the same: asked with its ETag, answered 304.
    site_server.requests.clear()
    site_server.request_headers.clear()
    same = feed(site_server, db)
    assert same.returncode == 0, same.log
    assert article_paths(site_server) == [path]
    asked = site_server.request_headers[site_server.requests.index(raw)]
    assert asked.get("If-None-Match", "").startswith('"')
    stats = stats_of_last_run(same)
    assert stats["rsarchive/not_modified"] == 1
    assert not any(k.startswith("rsarchive/dropped/") for k in stats)
    assert "rsarchive/fetch_failed" not in stats
    url = f"{site_server.url}{path}"
    state = same.rows("SELECT last_status, failures, feed_date FROM fetch_state WHERE url = ?", url)
    assert state == [(304, 0, "2024-12-02")]  # the feed gave a day, no time
    # The date is now held: the next run does not ask again.
    site_server.requests.clear()
    assert feed(site_server, db).returncode == 0
    assert article_paths(site_server) == []

    # Now it really changed (a new body, so a new ETag) and RSS dates it newer again.
    _, headers, body = site_server.site.respond(raw, origin=site_server.url)
    changed = body.replace("Kyiv’s grain corridor".encode(), "Kyiv’s grain lifeline".encode())
    site_server.overrides[raw] = (200, headers, changed)
    site_server.overrides["/feeds/feed.rss"] = (
        *rss[:2],
        rss_with_date(site_server, "ukraine-grain-corridor", "Tue, 03 Dec 2024 10:00:00 GMT"),
    )
    site_server.requests.clear()
    again = feed(site_server, db)
    assert again.returncode == 0, again.log
    assert article_paths(site_server) == [path]
    ((article_id, title),) = again.rows("SELECT id, title FROM articles WHERE url = ?", url)
    assert title.startswith("Kyiv’s grain lifeline")
    assert again.rows("SELECT count(*) FROM revisions WHERE article_id = ?", article_id) == [(2,)]
    assert stats_of_last_run(again)["rsarchive/articles_changed"] == 1


def test_an_archived_article_that_is_gone_keeps_its_content_and_gets_removed_at(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    assert feed(site_server, db).returncode == 0
    path = path_of(site_server, "polls-sidebar")
    gone_page = (410, {"Content-Type": "text/html"}, b"<html>Gone</html>")
    site_server.overrides[raw_path(site_server, "polls-sidebar")] = gone_page
    site_server.overrides["/feeds/feed.rss"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        rss_with_date(site_server, "sudan-famine-diplomacy", "Mon, 02 Dec 2024 10:00:00 GMT"),
    )
    gone = feed(site_server, db)
    assert "is gone: the archived article is marked removed" in gone.log
    row = gone.rows(
        "SELECT removed_at IS NOT NULL, length(body_text) > 1000 FROM articles WHERE url = ?",
        f"{site_server.url}{path}",
    )
    assert row == [(1, 1)]
    # Gone is an answer, not a failure to retry.
    assert gone.rows("SELECT last_status, failures FROM fetch_state WHERE url LIKE '%sudan%'") == [
        (410, 0)
    ]


def test_an_endless_load_more_feed_stops_at_the_page_cap(site_server, tmp_path):
    def endless(path: str) -> tuple[int, dict[str, str], bytes]:
        pn = int(parse_qs(urlsplit(path).query)["pn"][0])
        posts = [
            {"id": 9000000 + pn * 10 + i, "headline": f"Post {pn}.{i}",
             "raw_share_url": f"{site_server.url}/endless-{pn}-{i}/"}
            for i in range(2)
        ]  # fmt: skip
        body = {"has_more": True, "posts_by_source": {"current_page": posts}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    site_server.handlers["/res/load_more_posts/data.js"] = endless
    result = scrapy_crawl(
        "feed",
        tmp_path / "a.db",
        site_server.url,
        settings={"RSARCHIVE_FEED_MAX_PAGES": "4", "RSARCHIVE_FEED_URLS": ""},
    )
    # The home page and three load-more pages: four pages, then the cap.
    assert counts(site_server.requests)["load-more"] == 3
    pns = [parse_qs(urlsplit(p).query)["pn"][0] for p in site_server.requests if "load_more" in p]
    assert pns == ["2", "3", "4"]
    assert "stopped after 4 pages (RSARCHIVE_FEED_MAX_PAGES)" in result.log
    assert stats_of_last_run(result)["rsarchive/feed_capped"] == 1
    # The ids already shown are excluded from each next page, as the site's own script does.
    last = next(p for p in reversed(site_server.requests) if "load_more" in p)
    excluded = parse_qs(urlsplit(last).query)["exclude_post_ids"][0].split(",")
    assert {"9000020", "9000021", "9000030", "9000031"} <= set(excluded)


def test_a_load_more_feed_that_repeats_itself_stops(site_server, tmp_path):
    _, headers, same = site_server.site.respond(
        "/res/load_more_posts/data.js?node_id=1187550001&pn=2", origin=site_server.url
    )
    answer = json.loads(same)
    answer["has_more"] = True  # and the same three posts, whatever is asked
    site_server.handlers["/res/load_more_posts/data.js"] = lambda path: (
        200,
        headers,
        json.dumps(answer).encode(),
    )
    result = scrapy_crawl(
        "feed", tmp_path / "a.db", site_server.url, settings={"RSARCHIVE_FEED_URLS": ""}
    )
    assert result.returncode == 0, result.log
    assert counts(site_server.requests)["load-more"] == 2
    assert "the load-more feed repeats itself; stopping" in result.log
    assert result.rows("SELECT count(*) FROM articles") == [(7,)]


def test_a_listing_that_links_back_to_an_earlier_page_is_walked_once(site_server, tmp_path):
    _, headers, body = site_server.site.respond("/tag/nato/page/2/", origin=site_server.url)
    site_server.overrides["/tag/nato/page/2/"] = (
        200,
        headers,
        body.replace(b'<link rel="prev"', b'<link rel="next"'),
    )
    result = feed(site_server, tmp_path / "a.db", RSARCHIVE_FEED_URLS="")
    assert result.returncode == 0, result.log
    assert site_server.requests.count("/tag/nato/") == 1
    assert site_server.requests.count("/tag/nato/page/2/") == 1
    assert stats_of_last_run(result)["rsarchive/feed_loop_skipped"] == 1


def test_a_page_that_fails_every_time_is_recorded_and_retried_by_the_next_run(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    path = path_of(site_server, "us-strikes-iraq")
    url = f"{site_server.url}{path}"
    site_server.overrides[path] = (500, {"Content-Type": "text/html"}, b"<html>oops</html>")
    first = feed(site_server, db, RETRY_TIMES="1")
    # Scrapy retried it once, then gave up; the run goes on and records the failure.
    assert site_server.requests.count(path) == 2
    assert first.rows("SELECT last_status, failures FROM fetch_state WHERE url = ?", url) == [
        (500, 1)
    ]
    assert stats_of_last_run(first)["rsarchive/fetch_failed"] == 1
    assert first.rows("SELECT count(*) FROM articles") == [(9,)]

    # Nothing on the site names it as new any more (the home feed is caught up), yet it is tried.
    site_server.requests.clear()
    second = feed(site_server, db)
    assert article_paths(site_server) == [path]
    assert "retrying 1 pages that failed before" in second.log
    assert second.rows("SELECT failures FROM fetch_state WHERE url = ?", url) == [(2,)]

    del site_server.overrides[path]
    site_server.requests.clear()
    third = feed(site_server, db)
    assert third.returncode == 0, third.log
    assert article_paths(site_server) == [path]
    assert third.rows("SELECT failures, last_status FROM fetch_state WHERE url = ?", url) == [
        (0, 200)
    ]
    assert third.rows("SELECT count(*) FROM articles") == [(10,)]
    site_server.requests.clear()
    assert feed(site_server, db).returncode == 0
    assert article_paths(site_server) == []


def test_a_truncated_body_and_a_timeout_are_failures_recorded_for_the_next_run(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    cut = raw_path(site_server, "us-strikes-iraq")
    _, headers, body = site_server.site.respond(cut, origin=site_server.url)
    # The connection closes 1000 bytes short of the announced length.
    site_server.overrides[cut] = (200, {**headers, "Content-Length": str(len(body))}, body[:-1000])
    slow = raw_path(site_server, "truncated")

    def too_slow(path: str) -> tuple[int, dict[str, str], bytes]:
        time.sleep(8)
        return site_server.site.respond(path, origin=site_server.url)

    site_server.handlers[slow] = too_slow
    first = feed(site_server, db, DOWNLOAD_TIMEOUT="3")
    assert "Traceback" not in first.log
    rows = first.rows("SELECT url, failures, last_error FROM fetch_state WHERE failures > 0")
    failed = {url.removeprefix(site_server.url): error for url, _, error in rows}
    assert set(failed) == {cut.rstrip("/"), slow.rstrip("/")}, rows
    assert "took longer than 3.0 seconds" in failed[slow.rstrip("/")]
    assert stats_of_last_run(first)["rsarchive/fetch_failed"] == 2
    assert first.rows("SELECT count(*) FROM articles") == [(8,)]

    del site_server.overrides[cut], site_server.handlers[slow]
    site_server.requests.clear()
    second = feed(site_server, db)
    assert second.returncode == 0, second.log
    assert sorted(article_paths(site_server)) == sorted([cut.rstrip("/"), slow.rstrip("/")])
    assert second.rows("SELECT count(*) FROM articles") == [(10,)]
    assert second.rows("SELECT count(*) FROM fetch_state WHERE failures > 0") == [(0,)]


def test_a_load_more_endpoint_robots_txt_forbids_is_not_asked_and_not_a_failure(
    site_server, tmp_path
):
    _, headers, robots = site_server.site.respond("/robots.txt", origin=site_server.url)
    site_server.overrides["/robots.txt"] = (
        200,
        headers,
        robots.replace(b"Allow: /", b"Disallow: /res/load_more_posts/\nAllow: /"),
    )
    result = feed(site_server, tmp_path / "a.db")
    assert result.returncode == 0, result.log
    assert counts(site_server.requests).get("load-more", 0) == 0
    stats = stats_of_last_run(result)
    assert "rsarchive/fetch_failed" not in stats
    assert stats["rsarchive/not_fetched/ignored"] == 1
    # What RSS and the listings name is archived all the same; nothing is left to retry.
    assert result.rows("SELECT count(*) FROM articles") == [(8,)]
    assert result.rows("SELECT count(*) FROM fetch_state WHERE failures > 0") == [(0,)]


# -- the article spider's keep-reading feed ------------------------------------------------------


def article(server: SiteServer, db: Path, *args: str, **settings: str) -> CrawlResult:
    return scrapy_crawl(
        "article", db, server.url, "-a", f"url={server.page_url('seed')}", *args, settings=settings
    )


def seed_teasers(result: CrawlResult, server: SiteServer) -> list[tuple[int, str]]:
    return result.rows(
        "SELECT position, title FROM teasers WHERE page_url = ? ORDER BY position",
        f"{server.url}/2021/05/19/blinken-lavrov-iceland",
    )


def test_feed_pages_continue_the_positions_after_the_html_teasers(site_server, tmp_path):
    result = article(site_server, tmp_path / "a.db", "-a", "feed_pages=2")
    assert result.returncode == 0, result.log
    assert [t for _, t in seed_teasers(result, site_server)] == [
        "Israel-Hamas deal: Talking vs. bombing, works",
        "US strikes in Iraq show risk of escalation to wider war",
        "JFK: A man on the brink of revelation",
        "Saudi normalization can’t be bought while Gaza burns",
        "The munitions boom is a blank check with a long tail",
        "Kyiv’s grain corridor — and the café diplomacy keeping it open",
        "Manila’s caution in the South China Sea is a signal, not a weakness",
    ]
    assert [p for p, _ in seed_teasers(result, site_server)] == list(range(7))
    more = [p for p in site_server.requests if "load_more" in p]
    assert len(more) == 2
    query = parse_qs(urlsplit(more[0]).query)
    assert query["node_id"] == ["1187554248"] and query["pn"] == ["2"]
    assert query["exclude_post_ids"][0].split(",") == [
        "2652879530", "2666386029", "2666381402", "2666385804",
    ]  # fmt: skip
    # Only the page itself was fetched: the teasers' targets were not.
    assert article_paths(site_server) == ["/2021/05/19/blinken-lavrov-iceland"]


def test_feed_pages_0_archives_only_the_html_and_the_default_is_one_page(site_server, tmp_path):
    none = article(site_server, tmp_path / "a.db", "-a", "feed_pages=0")
    assert len(seed_teasers(none, site_server)) == 3
    assert counts(site_server.requests).get("load-more", 0) == 0
    site_server.requests.clear()
    default = article(site_server, tmp_path / "b.db")
    assert len(seed_teasers(default, site_server)) == 5
    assert counts(site_server.requests)["load-more"] == 1


def test_follow_archives_the_teased_articles_one_hop_and_no_more_than_the_cap(
    site_server, tmp_path
):
    result = article(site_server, tmp_path / "a.db", "-a", "follow=1", RSARCHIVE_FOLLOW_MAX="4")
    fetched = article_paths(site_server)
    # The page, then four of its five teasers (three in the HTML, two loaded): the cap.
    assert fetched[0] == "/2021/05/19/blinken-lavrov-iceland"
    assert sorted(fetched[1:]) == sorted(
        [
            "/israel-hamas-deal-2666386029",
            "/us-strikes-iraq-2666381402",
            "/jfk-assassination",
            "/saudi-israel-normalization",
        ]
    )
    assert "follow: stopped at 4 articles (RSARCHIVE_FOLLOW_MAX)" in result.log
    # One hop: the followed pages' own teasers and feeds are not walked.
    assert counts(site_server.requests)["load-more"] == 1
    assert "/houthi-red-sea-shipping" not in site_server.requests
    titles = {t for (t,) in result.rows("SELECT title FROM articles")}
    assert "Saudi normalization can’t be bought while Gaza burns" in titles


# -- the sitemap spider --------------------------------------------------------------------------


def sitemap(server: SiteServer, db: Path) -> CrawlResult:
    return scrapy_crawl("sitemap", db, server.url)


def test_sitemap_crawl_backfills_and_a_rerun_with_unchanged_lastmod_fetches_no_article(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    first = sitemap(site_server, db)
    assert first.returncode == 0, first.log
    assert {t for (t,) in first.rows("SELECT title FROM articles")} == titles(site_server)
    assert counts(site_server.requests)["articles"] == 10
    # The index, its two gzip sitemaps and the news sitemap, each read once.
    assert sorted(p for p in site_server.requests if kind(p) == "sitemaps") == [
        "/feeds/sitemaps/news_1.xml",
        "/feeds/sitemaps/sitemap_1.xml.gz",
        "/feeds/sitemaps/sitemap_2.xml.gz",
        "/feeds/sitemaps/sitemap_index.xml",
    ]
    site_server.requests.clear()
    second = sitemap(site_server, db)
    assert second.returncode == 0, second.log
    assert article_paths(site_server) == []
    assert stats_of_last_run(second)["rsarchive/articles_skipped_unchanged"] == 12


def gz_sitemap(server: SiteServer, name: str, replace: tuple[str, str]) -> bytes:
    _, _, body = server.site.respond(f"/feeds/sitemaps/{name}", origin=server.url)
    text = gzip.decompress(body).decode()
    assert replace[0] in text
    return gzip.compress(text.replace(*replace).encode())


def test_sitemap_lastmod_newer_refetches_and_a_gone_article_gets_removed_at(site_server, tmp_path):
    db = tmp_path / "a.db"
    assert sitemap(site_server, db).returncode == 0
    path = path_of(site_server, "seed")
    lastmod = "2021-05-20T02:10:00Z</lastmod>"
    site_server.overrides["/feeds/sitemaps/sitemap_1.xml.gz"] = (
        200,
        {"Content-Type": "application/x-gzip"},
        gz_sitemap(site_server, "sitemap_1.xml.gz", (lastmod, "2025-01-01T00:00:00Z</lastmod>")),
    )
    site_server.overrides[raw_path(site_server, "seed")] = (
        404,
        {"Content-Type": "text/html"},
        b"<html>Not found</html>",
    )
    site_server.requests.clear()
    result = sitemap(site_server, db)
    assert article_paths(site_server) == [path]
    assert result.rows(
        "SELECT removed_at IS NOT NULL, length(body_text) > 1000 FROM articles"
        " WHERE post_id = '2652879530'"
    ) == [(1, 1)]


def test_a_sitemap_index_that_lists_itself_is_read_once(site_server, tmp_path):
    _, headers, body = site_server.site.respond(
        "/feeds/sitemaps/sitemap_index.xml", origin=site_server.url
    )
    me = f"<sitemap><loc>{site_server.url}/feeds/sitemaps/sitemap_index.xml</loc></sitemap>"
    site_server.overrides["/feeds/sitemaps/sitemap_index.xml"] = (
        200,
        headers,
        body.replace(b"</sitemapindex>", me.encode() + b"</sitemapindex>"),
    )
    result = sitemap(site_server, tmp_path / "a.db")
    assert result.returncode == 0, result.log
    assert site_server.requests.count("/feeds/sitemaps/sitemap_index.xml") == 1
    assert stats_of_last_run(result)["rsarchive/sitemap_loop_skipped"] == 1
    assert result.rows("SELECT count(*) FROM articles") == [(10,)]


def test_a_gzip_sitemap_larger_than_the_size_limit_is_not_unpacked(site_server, tmp_path):
    bomb = gzip.compress(b"<urlset>" + b" " * 5_000_000 + b"</urlset>")
    site_server.overrides["/feeds/sitemaps/sitemap_2.xml.gz"] = (
        200,
        {"Content-Type": "application/x-gzip"},
        bomb,
    )
    result = scrapy_crawl(
        "sitemap", tmp_path / "a.db", site_server.url, settings={"DOWNLOAD_MAXSIZE": "1000000"}
    )
    assert "not a readable sitemap (or larger than allowed)" in result.log
    assert stats_of_last_run(result)["rsarchive/dropped/sitemap_invalid"] == 1
    # The other sitemaps still count: the five older posts, and the two in the news sitemap.
    assert result.rows("SELECT count(*) FROM articles") == [(7,)]


# -- the parsers ---------------------------------------------------------------------------------

BASE = "https://responsiblestatecraft.org/"


def test_load_more_json_is_read_tolerantly():
    answer = {
        "has_more": False,
        "posts_by_source": {
            "current_page": [
                {"id": 1, "headline": "First", "raw_share_url": "/first-1", "what": "ignored",
                 "created_ts": 1700000000, "section": {"title": "QiOSK"},
                 "authors": [{"title": "A. Writer", "url": "/author/a-writer/"}]},
                {"headline": "No id", "raw_share_url": "/no-id"},
                {"id": 3, "headline": "No URL"},
                {"id": 4, "title": "Second", "post_url": "https://responsiblestatecraft.org/s/",
                 "teaser": "<p>Visible <b>text</b>.</p>"},
                "not a post",
            ]
        },
    }  # fmt: skip
    page = parse_load_more(json.dumps(answer), BASE, start=3)
    assert page.has_more is False
    assert page.skipped == 3
    first, second = page.teasers
    assert (first.position, first.url, first.title, first.section) == (
        3, "https://responsiblestatecraft.org/first-1", "First", "QiOSK",
    )  # fmt: skip
    assert first.published_at == "2023-11-14T22:13:20Z"
    assert [a.name for a in first.authors] == ["A. Writer"]
    assert (second.position, second.title, second.excerpt) == (4, "Second", "Visible text.")
    with pytest.raises(ValueError):
        parse_load_more(b"<html>not json</html>", BASE, 0)


def test_rss_is_parsed_without_expanding_entities():
    hostile = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<rss version="2.0"><channel>
<item><title>&b;</title><link>https://responsiblestatecraft.org/x-1/&xxe;</link>
<pubDate>Wed, 19 May 2021 12:45:00 GMT</pubDate></item>
<item><title>t</title><link>https://responsiblestatecraft.org/y/</link>
<pubDate>Wed, 19 May 2021 12:45:00 GMT</pubDate>
<atom:updated xmlns:atom="http://www.w3.org/2005/Atom">2021-05-21T10:00:00Z</atom:updated></item>
</channel></rss>"""
    entries = parse_feed(hostile, BASE)
    assert all("root:" not in e.url for e in entries)
    assert entries[-1].url == "https://responsiblestatecraft.org/y/"
    # The newest date an item gives wins (pubDate, or an update date beside it).
    assert entries[-1].date == "2021-05-21T10:00:00Z"


# -- the fetch state -----------------------------------------------------------------------------


def test_fetch_state_counts_failures_keeps_validators_on_304_and_resets_on_success(tmp_path):
    from rsarchive.archive import Archive, fetchstate
    from rsarchive.items import FetchOutcome

    url = "https://responsiblestatecraft.org/some-post/"
    with Archive(f"sqlite:///{tmp_path / 'a.db'}") as archive:
        engine = archive.engine
        ok = FetchOutcome(url, 200, etag='"v1"', last_modified="Tue, 03 Dec 2024 10:00:00 GMT")
        assert fetchstate.record(engine, ok) == 0
        assert fetchstate.record(engine, FetchOutcome(url, 503, error="HTTP 503")) == 1
        assert fetchstate.record(engine, FetchOutcome(url, None, error="timeout")) == 2
        key = "https://responsiblestatecraft.org/some-post"
        assert fetchstate.outstanding(engine) == [key]
        held = fetchstate.held(engine, [url])[key]
        # A failure keeps what the last success learnt, and is not settled.
        assert (held.etag, held.failures, held.settled) == ('"v1"', 2, False)
        assert fetchstate.record(engine, FetchOutcome(url, 304, feed_date="2024-12-03")) == 0
        held = fetchstate.held(engine, [url])[key]
        assert (held.etag, held.last_modified, held.date) == (
            '"v1"', "Tue, 03 Dec 2024 10:00:00 GMT", "2024-12-03",
        )  # fmt: skip
        assert held.settled and fetchstate.outstanding(engine) == []
        assert held.stale("2024-12-04T00:00:00Z") and not held.stale("2024-12-03")
