"""The fault catalogue, content half: T22–T41, T47, T48 (sizes, bombs, robots, hostile sitemaps
and feeds, charsets, odd code points, non-HTML, scripts, degenerate and malformed pages, URL
identity, endless feeds, teaser oddities, a pipeline bug, idempotency)."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from faults.conftest import crawl
from faults.faultserver import FaultServer, chunked, computed, gzip_bomb, ok

SEED = "/2021/05/19/blinken-lavrov-iceland/"
SEED_KEY = "2021/05/19/blinken-lavrov-iceland"
IRAQ = "/us-strikes-iraq-2666381402"
SAUDI = "/saudi-israel-normalization/"
TEASER = '<div class="widget post-partial widget--teaser'


def test_T22_pages_past_the_size_limit_are_failed_fetches(server: FaultServer, tmp_path):
    big = server.fixture("seed").replace(b"</body>", b"<!--" + b"x" * 2_000_000 + b"--></body>")
    server.route(SEED, ok(big))  # announced length past the limit
    server.route(IRAQ, chunked(big))  # no length: cut off once past the limit
    run = crawl(server, tmp_path / "a.db", "article", f"urls={server.url}{SEED},{server.url}{IRAQ}",
                settings={"DOWNLOAD_MAXSIZE": str(1_000_000), "RETRY_TIMES": "0"})  # fmt: skip

    assert run.code == 1, run.log
    assert run.articles() == []
    assert run.failure(f"{server.url}/{SEED_KEY}")[0] == 1
    assert run.failure(server.url + IRAQ)[0] == 1
    assert run.stats["rsarchive/fetch_failed"] == 2
    run.assert_whole()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_T23_compression_bombs_stop_at_the_size_limit_and_fail(
    server: FaultServer, tmp_path, encoding
):
    bomb = gzip_bomb(64 * 1024 * 1024, encoding)  # 64 MiB of zeros in a few KiB
    server.route(SEED, ok(bomb, headers={"Content-Encoding": encoding}))
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}",
                settings={"DOWNLOAD_MAXSIZE": str(4 * 1024 * 1024)})  # fmt: skip

    assert run.code == 1, run.log
    assert run.articles() == []
    assert run.stats["rsarchive/fetch_failed/too_large"] == 1
    failures, _, error = run.failure(f"{server.url}/{SEED_KEY}")
    assert failures == 1 and error.startswith("too_large")
    assert re.search(r"WARNING: could not fetch .*too_large", run.log)


def test_T24_a_gzipped_sitemap_bomb_is_refused(server: FaultServer, tmp_path):
    server.route("/bomb.xml.gz", ok(gzip_bomb(64 * 1024 * 1024), "application/x-gzip"))
    run = crawl(server, tmp_path / "a.db", "sitemap", "sitemap=/bomb.xml.gz",
                settings={"DOWNLOAD_MAXSIZE": str(4 * 1024 * 1024)})  # fmt: skip

    assert run.code == 1, run.log
    assert run.stats["rsarchive/dropped/sitemap_invalid"] == 1
    assert re.search(r"ERROR: not a readable sitemap .*bomb.xml.gz", run.log)


def test_T26_a_12_mb_text_node_is_archived_whole(server: FaultServer, tmp_path):
    page = server.fixture("seed")
    words = b"peace " * (2 * 1024 * 1024)  # 12 MiB in one text node
    at = page.index(b"<p>", page.index(b'class="body-description"'))
    server.route(SEED, ok(page[:at] + b"<p>" + words + b"</p>" + page[at:]))
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}", "feed_pages=0")

    assert run.code == 0, run.log
    ((length, count),) = run.rows("SELECT length(body_text), word_count FROM articles")
    assert length > 12 * 1024 * 1024 and count > 2 * 1024 * 1024
    assert run.rows("SELECT COUNT(*) FROM teasers") == [(3,)]
    run.assert_whole()


@pytest.mark.parametrize(
    ("answer", "code", "fetched"),
    [
        (ok(b"oops", "text/plain", 500), 75, False),  # 5xx: assume complete disallow
        (ok(b"nothing here", "text/html", 404), 0, True),  # 4xx: no rules
        (ok(bytes(range(256)) * 40, "text/plain"), 0, True),  # garbage: no rules it can read
    ],
    ids=["5xx", "4xx", "garbage"],
)
def test_T27_robots_txt_5xx_stops_4xx_and_garbage_allow(
    server: FaultServer, tmp_path, answer, code, fetched
):
    server.route("/robots.txt", answer)
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}", "feed_pages=0",
                settings={"RETRY_TIMES": "0"})  # fmt: skip

    assert run.code == code, run.log
    assert (server.gets(SEED) == 1) is fetched
    assert bool(run.articles()) is fetched


def test_T28_T30_external_dtds_self_listing_and_endless_sitemap_chains(
    server: FaultServer, tmp_path
):
    base = server.url
    urlset = (
        f'<?xml version="1.0"?><!DOCTYPE urlset SYSTEM "{base}/evil.dtd">'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}{SEED}</loc></url><url><loc>&ext;</loc></url></urlset>"
    )
    server.route("/articles.xml", ok(urlset.encode(), "application/xml"))
    index = (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{base}/index.xml</loc></sitemap>"  # itself
        f"<sitemap><loc>{base}/articles.xml</loc></sitemap>"
        f"<sitemap><loc>{base}/chain/1.xml</loc></sitemap></sitemapindex>"
    )
    server.route("/index.xml", ok(index.encode(), "application/xml"))

    def link(path: str) -> ok:
        n = int(path.rsplit("/", 1)[1].split(".")[0])
        return ok(
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
            f'sitemap/0.9"><sitemap><loc>{base}/chain/{n + 1}.xml</loc></sitemap>'
            "</sitemapindex>".encode(),
            "application/xml",
        )

    server.route("/chain/*", computed(link))
    run = crawl(server, tmp_path / "a.db", "sitemap", "sitemap=/index.xml")

    assert run.articles() == [f"{base}/{SEED_KEY}"]
    assert server.gets("/evil.dtd") == 0
    assert server.gets("/index.xml") == 1
    chain = [p for p in server.paths() if p.startswith("/chain/")]
    assert 1 <= len(chain) <= 5, chain
    assert run.stats["rsarchive/sitemap_loop_skipped"] == 1
    assert re.search(r"WARNING: .*sitemaps nested deeper than", run.log)
    assert run.code == 1, run.log  # a chain cut short: not everything listed was read
    run.assert_whole()


def test_T31_broken_rss_keeps_its_readable_items_and_says_so(server: FaultServer, tmp_path):
    rss = server.fixture("/feeds/feed.rss")
    cut = rss.index(b"</item>", rss.index(b"</item>") + 1) + len(b"</item>") + 40
    server.route("/feeds/feed.rss", ok(rss[:cut], "application/rss+xml"))  # ends mid-item
    server.route("/feed/", ok(b"\x00\x01<rss><channel><item><link>", "application/rss+xml"))
    run = crawl(server, tmp_path / "a.db", "feed",
                settings={"RSARCHIVE_FEED_MAX_PAGES": "1"})  # fmt: skip

    assert "Traceback" not in run.log
    assert len(run.articles()) >= 2  # the two whole items before the cut
    assert re.search(r"WARNING: no items in the feed .*/feed/", run.log)
    run.assert_whole()


def _retitle(page: bytes, title: str) -> str:
    old = "What to make of the Blinken-Lavrov 'showdown' in Iceland"
    return page.decode().replace(old, title)


def test_T32_charsets_declared_mislabelled_and_unknown_decode_right(server: FaultServer, tmp_path):
    seed = server.fixture("seed")
    title = "Café “quoted” — naïve"
    page = _retitle(seed, title)
    paths = {
        "/cp1252/": (page.encode("cp1252", "replace"), "text/html; charset=windows-1252"),
        "/utf16/": (page.encode("utf-16"), "text/html"),  # a BOM, no label
        "/bogus/": (page.encode(), "text/html; charset=x-no-such-charset"),
        "/latin1-label/": (page.encode(), "text/html; charset=iso-8859-1"),  # mislabelled
    }
    for path, (body, ctype) in paths.items():
        server.route(path, ok(body, ctype))
    urls = ",".join(server.url + p for p in paths)
    run = crawl(server, tmp_path / "a.db", "article", f"urls={urls}", "feed_pages=0")

    assert run.code == 0, run.log
    titles = dict(run.rows("SELECT url, title FROM articles"))
    for path in paths:
        assert titles[server.url + path.rstrip("/")] == title, path
    run.assert_whole()


def test_T33_nul_and_odd_code_points_are_stored_without_nul(server: FaultServer, tmp_path):
    seed = server.fixture("seed")
    odd = "Nul\x00here &#0; &#xD800; \ufffe \u202eevil\u202c \u0085 \U0001f600 end"
    page = _retitle(seed, odd).replace("<p>", "<p>\x00NUL in the body \ufeff ", 1)
    server.route(SEED, ok(page.encode("utf-8", "surrogatepass")))
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}", "feed_pages=0")

    assert run.code == 0, run.log
    ((title, body),) = run.rows("SELECT title, body_text FROM articles")
    assert "\x00" not in title and "\x00" not in body
    assert title.startswith("Nul") and title.endswith("end") and "\U0001f600" in title
    assert "NUL in the body" in body
    run.assert_whole()


def test_T34_non_html_answers_are_dropped_not_html(server: FaultServer, tmp_path):
    answers = {
        "/pdf/": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj", "application/pdf"),
        "/png/": (b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png"),
        "/plain/": (b"Just text, no page.", "text/plain"),
        "/binary/": (bytes(range(256)), "application/octet-stream"),
    }
    for path, (body, ctype) in answers.items():
        server.route(path, ok(body, ctype))
    urls = ",".join(server.url + p for p in answers)
    run = crawl(server, tmp_path / "a.db", "article", f"urls={urls}")

    assert run.code == 1, run.log
    assert run.articles() == []
    assert run.stats["rsarchive/dropped/not_html"] == 4
    assert "Traceback" not in run.log


def test_T35_script_payloads_never_reach_stored_html(server: FaultServer, tmp_path):
    seed = server.fixture("seed").decode()
    payloads = (
        '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">'
        'j</a><svg onload="alert(4)"><circle/></svg><iframe srcdoc="<script>alert(5)</script>">'
        '</iframe><a href="JaVaScRiPt&#58;alert(6)">k</a><p style="x:expression(alert(7))">css</p>'
        '<object data="data:text/html,<script>alert(8)</script>"></object>'
        '<math><mi xlink:href="javascript:alert(9)">m</mi></math>'
    )
    at = seed.index("<p>", seed.index('class="body-description"'))
    page = seed[:at] + payloads + seed[at:]
    page = _retitle(page.encode(), "<script>alert('title')</script>Blinken")
    server.route(SEED, ok(page.encode()))
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}", "feed_pages=0")

    assert run.code == 0, run.log
    ((html, title),) = run.rows("SELECT body_html, title FROM articles")
    lowered = html.lower()
    for bad in ("<script", "onerror", "onload", "javascript:", "srcdoc", "<iframe", "<object",
                "expression(", "alert("):  # fmt: skip
        assert bad not in lowered, bad
    assert ("Blinken" in title and "<script" not in title.lower()) or title.startswith("<script>")
    for (teaser_html,) in run.rows("SELECT excerpt FROM teasers"):
        assert "<script" not in (teaser_html or "").lower()


def test_T36_empty_and_degenerate_pages_are_dropped_with_a_reason(server: FaultServer, tmp_path):
    answers = {
        "/empty/": b"",
        "/blank/": b" \r\n\t " * 100,
        "/bare/": b"<html></html>",
        "/head-only/": b"<!doctype html><html><head><title>t</title></head></html>",
        "/comment/": b"<!-- nothing -->",
    }
    for path, body in answers.items():
        server.route(path, ok(body))
    server.route("/no-content/", ok(b"", status=204))
    urls = ",".join(server.url + p for p in [*answers, "/no-content/"])
    run = crawl(server, tmp_path / "a.db", "article", f"urls={urls}")

    assert run.code == 1, run.log
    assert run.articles() == []
    dropped = {k: v for k, v in run.stats.items() if k.startswith("rsarchive/dropped/")}
    assert sum(dropped.values()) == 6, dropped
    assert "Traceback" not in run.log
    for path in [*answers, "/no-content/"]:
        assert run.failure(server.url + path.rstrip("/"))[0] == 1, path


def test_T37_malformed_html_still_yields_the_article_and_its_teasers(server: FaultServer, tmp_path):
    seed = server.fixture("seed").decode()
    broken = (
        "</div></div></span>"  # stray end tags first
        + seed.replace("<p>", "<p><b><i>", 3)  # unclosed inline tags
        .replace("</h1>", "</h2>", 1)  # mismatched end tag
        .replace("<body", "<body><body class=again", 1)  # two bodies
        .replace("</html>", "</html><div>after the end</div>")  # content after </html>
    )
    server.route(SEED, ok(broken.encode()))
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}", "feed_pages=0")

    assert run.code == 0, run.log
    ((title, body),) = run.rows("SELECT title, body_text FROM articles")
    assert title == "What to make of the Blinken-Lavrov 'showdown' in Iceland"
    assert "Blinken" in body
    assert run.rows("SELECT COUNT(*) FROM teasers") == [(3,)]
    run.assert_whole()


def test_T38_offsite_and_home_canonicals_are_ignored(server: FaultServer, tmp_path):
    seed = server.fixture("seed").decode()
    own = server.url + SEED
    server.route("/offsite/", ok(seed.replace(own, "https://elsewhere.example/stolen/").encode()))
    server.route("/home/", ok(seed.replace(own, server.url + "/").encode()))
    run = crawl(server, tmp_path / "a.db", "article",
                f"urls={server.url}/offsite/,{server.url}/home/", "feed_pages=0")  # fmt: skip

    assert run.code == 0, run.log
    assert run.articles() == [f"{server.url}/home", f"{server.url}/offsite"]
    assert run.stats["rsarchive/page_warning/canonical_offsite"] == 2  # canonical and og:url
    assert not run.rows("SELECT 1 FROM articles WHERE url LIKE '%elsewhere%'")


def test_T39_unreadable_dates_are_unknown_with_the_raw_string_kept(server: FaultServer, tmp_path):
    page = server.fixture("us-strikes-iraq").decode()
    for path, value in {
        "/d-words/": "yesterday-ish",
        "/d-month13/": "2021-13-45T99:00:00Z",
    }.items():
        server.route(path, ok(page.replace("2023-11-22T13:55:00-05:00", value).encode()))
    run = crawl(server, tmp_path / "a.db", "article",
                f"urls={server.url}/d-words/,{server.url}/d-month13/", "feed_pages=0")  # fmt: skip

    assert run.code == 0, run.log
    rows = set(run.rows("SELECT published_at, published_at_raw FROM articles"))
    assert rows == {(None, "yesterday-ish"), (None, "2021-13-45T99:00:00Z")}


def _load_more(path: str) -> ok:
    """An endless load-more feed: every page has one new post and says there is more."""
    n = int(re.search(r"pn=(\d+)", path).group(1))
    post = {"id": 900000 + n, "headline": f"Endless {n}", "url": f"/endless-{n}/",
            "section": {"title": "Europe"}}  # fmt: skip
    return ok(
        json.dumps({"has_more": True, "posts_by_source": {"current_page": [post]}}).encode(),
        "application/json",
    )


def test_T40_an_endless_load_more_feed_stops_at_its_page_cap(server: FaultServer, tmp_path):
    server.route("/res/load_more_posts/data.js", computed(_load_more))
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}", "feed_pages=4")

    assert run.code == 0, run.log
    assert server.gets("/res/load_more_posts/data.js") == 4
    assert run.stats["rsarchive/feed_pages_stored"] == 4
    run.assert_whole()


def test_T41_ten_thousand_teasers_and_odd_ones_are_kept_whole_or_skipped(
    server: FaultServer, tmp_path
):
    seed = server.fixture("seed").decode()
    start = seed.index(TEASER)
    one = seed[start : seed.index(TEASER, start + 1)]
    old_url, old_id = f"{server.url}/israel-hamas-deal-2666386029", "2666386029"
    many = "".join(
        one.replace(old_url, f"{server.url}/post-{i}").replace(old_id, str(10**9 + i))
        for i in range(10_000)
    )
    odd = "".join(
        one.replace(old_url, href).replace(old_id, str(2 * 10**9 + i))
        for i, href in enumerate(
            ("", "javascript:alert(1)", "https://elsewhere.example/x", f"{server.url}/post-0")
        )
    )
    server.route(SEED, ok((seed[:start] + many + odd + seed[start:]).encode()))
    # 10,007 teasers in the seed's full markup: 49 MB.
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}", "feed_pages=0",
                settings={"DOWNLOAD_MAXSIZE": str(64 * 1024 * 1024)})  # fmt: skip

    assert run.code == 0, run.log
    (n,) = run.rows("SELECT COUNT(*) FROM teasers WHERE page_url = ?", f"{server.url}/{SEED_KEY}")[
        0
    ]
    assert n == 10_000 + 3  # every distinct on-site teaser; the odd four skipped
    positions = [p for (p,) in run.rows("SELECT position FROM teasers ORDER BY position")]
    assert positions == sorted(set(positions))
    assert not run.rows(
        "SELECT 1 FROM teasers WHERE url LIKE '%elsewhere%' OR url LIKE 'javascript%'"
    )
    run.assert_whole()


def test_T47_a_pipeline_bug_on_one_page_is_recorded_and_the_rest_archived(
    server: FaultServer, tmp_path
):
    pipelines = {
        "rsarchive.pipelines.split.SplitPipeline": 100,
        "rsarchive.pipelines.clean.CleanPipeline": 200,
        "tests.faults.buggy.FailOnOnePage": 250,
        "rsarchive.pipelines.store.StorePipeline": 300,
    }
    urls = ",".join(server.url + p for p in (SEED, IRAQ, SAUDI))
    bug = {"ITEM_PIPELINES": json.dumps(pipelines), "FAULT_FAIL_ON": "us-strikes"}
    run = crawl(server, tmp_path / "a.db", "article", f"urls={urls}", "feed_pages=0", settings=bug)

    assert run.code == 1, run.log
    assert run.articles() == [
        f"{server.url}/{SEED_KEY}",
        f"{server.url}/saudi-israel-normalization",
    ]
    failures, status, error = run.failure(server.url + IRAQ)
    assert (failures, status) == (1, 200) and error.startswith("item_error: KeyError")
    assert run.stats["rsarchive/item_error"] == 1
    assert re.search(r"ERROR: Error processing .*us-strikes-iraq.*KeyError", run.log)
    run.assert_whole()


def test_T48_a_second_run_over_the_same_site_changes_nothing_but_sighting_times(
    server: FaultServer, tmp_path
):
    from test_crawl import dump

    db = tmp_path / "a.db"
    urls = ",".join(server.url + p for p in (SEED, IRAQ, SAUDI))
    first = crawl(server, db, "article", f"urls={urls}")
    assert first.code == 0, first.log
    before = dump(db)
    second = crawl(server, db, "article", f"urls={urls}")
    assert second.code == 0, second.log
    assert dump(db) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM crawl_runs").fetchone() == (2,)
    second.assert_whole()


def test_T31_an_rss_feed_with_a_billion_laughs_dtd_loses_no_item(server: FaultServer, tmp_path):
    rss = server.fixture("/feeds/feed.rss").decode()
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    dtd = f'<!DOCTYPE rss [<!ENTITY lol0 "lol">{lol}<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    first = rss.index("<item>")
    bad = "<item><title>&lol9;</title><link>&lol9;</link></item><item><link>&xxe;</link></item>"
    rss = rss.replace("?>", "?>" + dtd, 1) if rss.startswith("<?xml") else dtd + rss
    first = rss.index("<item>")
    server.route("/feeds/feed.rss", ok((rss[:first] + bad + rss[first:]).encode(),
                                       "application/rss+xml"))  # fmt: skip
    server.route("/feed/", ok(b"", "application/rss+xml"))
    run = crawl(server, tmp_path / "a.db", "feed", settings={"RSARCHIVE_FEED_MAX_PAGES": "1"})

    assert run.stats["rsarchive/feed_items"] == rss.count("<item>")
    assert not [p for p in server.paths() if "passwd" in p or "xxe" in p or "lol" in p]
    assert "Traceback" not in run.log


def test_T39_a_sitemap_lastmod_in_9999_does_not_refetch_the_page_every_run(
    server: FaultServer, tmp_path
):
    sitemap = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{server.url}{SEED}</loc><lastmod>9999-12-31T00:00:00Z</lastmod></url>"
        "</urlset>"
    ).encode()
    server.route("/future.xml", ok(sitemap, "application/xml"))
    db = tmp_path / "a.db"
    first = crawl(server, db, "sitemap", "sitemap=/future.xml")
    second = crawl(server, db, "sitemap", "sitemap=/future.xml")

    assert (first.code, second.code) == (0, 0), second.log
    assert server.gets(SEED) == 1  # new the first time; held, and not "newer", the second
    assert second.stats["rsarchive/implausible_date"] == 1
    assert re.search(r"WARNING: implausible date 9999-12-31.* in a feed or sitemap", second.log)
