"""Issue 10's table: each crawl-path failure found by the fault catalogue, now handled.

Every test runs a real `rsarchive crawl` against the fault server and checks what a user relies
on: rows, fetch_state, the log line, the stats, the exit code, and an archive that is whole.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from conftest import rsarchive

from faults.conftest import crawl
from faults.faultserver import FaultServer, no_length, ok, redirect

SEED = "/2021/05/19/blinken-lavrov-iceland/"
SEED_KEY = "2021/05/19/blinken-lavrov-iceland"


def test_T05_a_body_cut_without_a_length_is_a_failed_fetch_retried_next_run(
    server: FaultServer, tmp_path
):
    page = server.fixture("seed")
    url = server.route(SEED, no_length(page, cut=len(page) // 2), no_length(page))
    db = tmp_path / "a.db"

    first = crawl(server, db, "article", f"url={url}", "feed_pages=0")
    assert first.code == 1, first.log
    assert first.articles() == []
    failures, _status, error = first.failure(f"{server.url}/{SEED_KEY}")
    assert failures == 1 and error.startswith("incomplete")
    assert re.search(rf"WARNING: could not fetch {re.escape(url)}: incomplete", first.log)
    assert first.stats["rsarchive/fetch_failed/incomplete"] == 1

    # The same page served whole the same way (the body ends at the close) is archived.
    second = crawl(server, db, "article", f"url={url}", "feed_pages=0")
    assert second.code == 0, second.log
    assert second.articles() == [f"{server.url}/{SEED_KEY}"]
    assert second.failure(f"{server.url}/{SEED_KEY}")[0] == 0
    assert second.rows("SELECT COUNT(*) FROM teasers")[0][0] == 3
    second.assert_whole()


def test_T16_T17_T18_redirect_loops_and_offsite_redirects_are_failures_named_in_the_log(
    server: FaultServer, tmp_path
):
    # The seed's second teaser loops on itself; a start URL loops; another leaves the host.
    server.route("/us-strikes-iraq-2666381402", redirect("/us-strikes-iraq-2666381402"))
    loop = server.route("/loop/", redirect("/loop/"))
    other_host = server.url.replace("127.0.0.1", "localhost")
    moved = server.route("/moved/", redirect(f"{other_host}/moved/"))
    seed = server.url + SEED
    run = crawl(server, tmp_path / "a.db", "article", f"urls={seed},{loop},{moved}", "follow=1")

    assert run.code == 1, run.log
    teaser_url = f"{server.url}/us-strikes-iraq-2666381402"
    for url, reason in ((teaser_url, "redirect_loop"), (loop, "redirect_loop"),
                        (moved, "offsite_redirect")):  # fmt: skip
        assert re.search(rf"WARNING: .*{re.escape(url)}.*{reason}", run.log), (url, run.log)
        failures, _, error = run.failure(url.rstrip("/"))
        assert failures == 1 and error.startswith(reason)
    assert run.stats["rsarchive/fetch_failed/redirect_loop"] == 2
    assert run.stats["rsarchive/fetch_failed/offsite_redirect"] == 1
    # Nothing went to the other host, and the rest of the crawl went on.
    assert all(r.headers.get("host", "").startswith("127.0.0.1") for r in server.requests)
    assert f"{server.url}/{SEED_KEY}" in run.articles()
    run.assert_whole()


@pytest.mark.parametrize("processes", ["0", "1"], ids=["in-line", "extraction-process"])
def test_T25_50000_nested_divs_are_read_without_recursion(server: FaultServer, tmp_path, processes):
    page = server.fixture("seed").decode()
    at = page.index(">", page.index('class="body-description"')) + 1
    deep = "<div>" * 50_000 + "<p>Words at the bottom of the well.</p>" + "</div>" * 50_000
    url = server.route(SEED, ok((page[:at] + deep + page[at:]).encode()))
    # With an extraction process, the page is parsed (and flattened) there only.
    run = crawl(
        server, tmp_path / "a.db", "article", f"url={url}", "feed_pages=0",
        settings={"RSARCHIVE_EXTRACT_PROCESSES": processes},
    )  # fmt: skip

    assert "RecursionError" not in run.log
    assert run.code == 0, run.log
    ((body,),) = run.rows("SELECT body_text FROM articles")
    assert "Words at the bottom of the well." in body
    assert "Blinken" in body
    assert run.rows("SELECT COUNT(*) FROM teasers")[0][0] == 3
    assert run.stats["rsarchive/page_warning/deep_tree"] == 1
    run.assert_whole()

    # Re-read from the stored capture (no network), the page is read the same way.
    rebuilt = tmp_path / "rebuilt.db"
    again = rsarchive("reparse", "--db", str(run.db), "--into", str(rebuilt))
    assert again.returncode == 0, again.stderr
    assert "RecursionError" not in again.stderr
    with sqlite3.connect(rebuilt) as conn:
        ((text,),) = conn.execute("SELECT body_text FROM articles").fetchall()
        assert "Words at the bottom of the well." in text
        assert conn.execute("SELECT COUNT(*) FROM teasers").fetchone() == (3,)


def test_T34_json_at_an_article_url_is_dropped_not_html(server: FaultServer, tmp_path):
    body = json.dumps({"post": {"id": 1, "headline": "<h1>not a page</h1>"}}).encode()
    url = server.route(SEED, ok(body, "application/json"))
    run = crawl(server, tmp_path / "a.db", "article", f"url={url}", "feed_pages=0")

    assert run.code == 1, run.log
    assert "Traceback" not in run.log
    assert run.stats["rsarchive/dropped/not_html"] == 1
    assert re.search(rf"Dropped {re.escape(url)}: not an HTML page \(application/json\)", run.log)
    assert run.articles() == []
    assert run.failure(f"{server.url}/{SEED_KEY}")[0] == 1


def test_T29_sitemap_bombs_lose_no_valid_loc_and_skip_unresolvable_ones(
    server: FaultServer, tmp_path
):
    lol = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    doctype = (
        f'<!DOCTYPE urlset [<!ENTITY lol0 "lol">{lol}<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    )
    base = server.url
    sitemap = (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{base}{SEED}</loc><lastmod>2021-05-19</lastmod></url>"
        "<url><loc>&lol9;</loc></url>"
        f"<url><loc>{base}/&xxe;</loc></url>"
        "<url><loc></loc></url>"
        "<url><loc>   </loc></url>"
        f"<url><loc>{base}/us-strikes-iraq-2666381402</loc></url>"
        f"<url><loc>{base}/saudi-israel-normalization/</loc></url>"
        "</urlset>"
    ).encode()
    server.route("/hostile-sitemap.xml", ok(sitemap, "application/xml"))
    run = crawl(server, tmp_path / "a.db", "sitemap", "sitemap=/hostile-sitemap.xml")

    assert run.code == 0, run.log
    assert run.articles() == [
        f"{base}/{SEED_KEY}",
        f"{base}/saudi-israel-normalization",
        f"{base}/us-strikes-iraq-2666381402",
    ]
    assert run.stats["rsarchive/sitemap_loc_skipped"] == 4
    assert len(re.findall(r"WARNING: .*skipping <loc>", run.log)) == 4
    # Neither the site root nor anything like the entity's target was asked for.
    assert not [p for p in server.paths() if p in ("/", "") or "passwd" in p or "xxe" in p]
    run.assert_whole()


def test_T38_one_get_per_normalised_url_per_run(server: FaultServer, tmp_path):
    base = server.url
    upper = base.replace("http://", "HTTP://")
    urls = [f"{base}{SEED}", f"{base}{SEED}?utm_source=x", f"{base}{SEED}?fbclid=1&gclid=2",
            f"{base}{SEED}#comments", f"{upper}{SEED}"]  # fmt: skip
    run = crawl(server, tmp_path / "a.db", "article", f"urls={','.join(urls)}")

    assert run.code == 0, run.log
    assert server.gets(SEED) == 1
    assert run.articles() == [f"{base}/{SEED_KEY}"]


def test_T38_a_page_claiming_another_archived_url_never_overwrites_it(
    server: FaultServer, tmp_path
):
    db = tmp_path / "a.db"
    seed = server.url + SEED
    with_title = "SELECT title, body_text, declared_canonical FROM articles WHERE url = ?"
    run = crawl(server, db, "article", f"url={seed}", "feed_pages=0")
    assert run.code == 0, run.log
    before = run.rows(with_title, f"{server.url}/{SEED_KEY}")

    # /x/ is another article whose canonical and og:url claim the seed's URL.
    other = server.fixture("two-authors").decode()
    other = other.replace(f"{server.url}/saudi-israel-normalization/", seed)
    x = server.route("/x/", ok(other.encode()))
    # The legit cases: a redirect to the page itself, the page with tracking parameters.
    old = server.route("/old-address/", redirect(SEED, 301))
    run = crawl(server, db, "article", f"urls={x},{old},{seed}?utm_source=feed", "feed_pages=0")

    assert run.code == 0, run.log
    assert run.rows(with_title, f"{server.url}/{SEED_KEY}") == before
    ((title, declared),) = run.rows(
        "SELECT title, declared_canonical FROM articles WHERE url = ?", f"{server.url}/x"
    )
    assert title.startswith("Saudi") and declared == f"{server.url}/{SEED_KEY}"
    assert before[0][2] is None
    assert re.search(rf"WARNING: .*{re.escape(x)} declares canonical", run.log)
    # The seed's teasers stay the seed's; /x/ has its own three.
    assert run.rows("SELECT COUNT(*) FROM teasers WHERE page_url = ?", f"{server.url}/x") == [(3,)]
    assert run.rows(
        "SELECT COUNT(*) FROM teasers WHERE page_url = ?", f"{server.url}/{SEED_KEY}"
    ) == [(3,)]
    run.assert_whole()


def test_T39_implausible_dates_are_null_with_a_warning_and_the_raw_string_kept(
    server: FaultServer, tmp_path
):
    page = server.fixture("us-strikes-iraq").decode()
    urls = []
    for year in ("9999", "1900", "2099"):
        dated = page.replace("2023-11-22T13:55:00-05:00", f"{year}-11-22T13:55:00-05:00")
        urls.append(server.route(f"/dated-{year}/", ok(dated.encode())))
    urls.append(server.url + "/us-strikes-iraq-2666381402")
    run = crawl(server, tmp_path / "a.db", "article", f"urls={','.join(urls)}")

    assert run.code == 0, run.log
    rows = dict(
        (url.rsplit("/", 1)[-1], (at, raw))
        for url, at, raw in run.rows("SELECT url, published_at, published_at_raw FROM articles")
    )
    for year in ("9999", "1900", "2099"):
        assert rows[f"dated-{year}"] == (None, f"{year}-11-22T13:55:00-05:00")
        assert re.search(rf"WARNING: implausible date .*{year}-11-22.*dated-{year}", run.log)
    assert rows["us-strikes-iraq-2666381402"][0] == "2023-11-22T18:55:00Z"
    assert run.stats["rsarchive/implausible_date"] == 3


def test_T41_a_teaser_pointing_at_its_own_page_is_not_a_teaser(server: FaultServer, tmp_path):
    page = server.fixture("seed").decode()
    teaser = f"{server.url}/israel-hamas-deal-2666386029"
    url = server.route(SEED, ok(page.replace(teaser, server.url + SEED).encode()))
    run = crawl(server, tmp_path / "a.db", "article", f"url={url}", "feed_pages=0")

    assert run.code == 0, run.log
    teasers = run.rows("SELECT url FROM teasers ORDER BY position")
    assert teasers == [
        (f"{server.url}/us-strikes-iraq-2666381402",),
        (f"{server.url}/jfk-assassination",),
    ]
    assert run.stats["rsarchive/teasers_self"] == 1
