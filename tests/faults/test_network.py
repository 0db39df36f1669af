"""The fault catalogue, network half: T01–T21 (connections, truncation, stalls, statuses,
redirects, headers), each a real `rsarchive crawl` against the fault server."""

from __future__ import annotations

import gzip
import re
import socket

from faults.conftest import crawl
from faults.faultserver import (
    FaultServer,
    chunked,
    drip,
    ok,
    raw,
    redirect,
    reset,
    silent,
    stall,
)

SEED = "/2021/05/19/blinken-lavrov-iceland/"
SEED_KEY = "2021/05/19/blinken-lavrov-iceland"
IRAQ = "/us-strikes-iraq-2666381402"
SAUDI = "/saudi-israel-normalization/"


def test_T01_a_closed_port_fetches_nothing_and_exits_75(server: FaultServer, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as s:
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    server.url = closed  # the crawl is pointed at a port nobody listens on
    run = crawl(server, tmp_path / "a.db", "article", f"url={closed}{SEED}")

    assert run.code == 75, run.log
    assert run.articles() == []
    assert "Connection refused" in run.log and "robots.txt" in run.log
    assert run.rows("PRAGMA integrity_check") == [("ok",)]


def test_T02_a_reset_before_any_byte_is_retried_and_the_page_kept(server: FaultServer, tmp_path):
    server.route(SEED, reset(), ok(server.fixture("seed")))
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}", "feed_pages=0")

    assert run.code == 0, run.log
    assert run.articles() == [f"{server.url}/{SEED_KEY}"]
    assert run.stats["retry/count"] == 1
    assert server.gets(SEED) == 2
    run.assert_whole()


def test_T03_T04_T06_truncated_bodies_are_failed_fetches_never_stored(
    server: FaultServer, tmp_path
):
    seed, iraq, saudi = (server.fixture(c) for c in ("seed", "us-strikes-iraq", "two-authors"))
    half = len(seed) // 2
    # T03: a Content-Length the body never reaches.
    server.route(SEED, ok(seed[:half], headers={"Content-Length": str(len(seed))}))
    # T04: a chunked body whose last chunk never comes.
    server.route(IRAQ, chunked(iraq, last_chunk=False, cut=len(iraq) // 2))
    # T06: a gzip stream cut in the middle (its own length announced: only gzip knows).
    packed = gzip.compress(saudi, mtime=0)
    server.route(SAUDI, ok(packed[: len(packed) // 2], headers={"Content-Encoding": "gzip"}))
    urls = [server.url + p for p in (SEED, IRAQ, SAUDI)]
    run = crawl(server, tmp_path / "a.db", "article", f"urls={','.join(urls)}", "feed_pages=0")

    assert run.code == 1, run.log
    assert run.articles() == []
    for url in urls:
        failures, _, error = run.failure(url.rstrip("/"))
        assert failures == 1, (url, error)
    assert run.stats["rsarchive/fetch_failed"] == 3
    assert run.rows("SELECT COUNT(*) FROM captures") == [(0,)]
    run.assert_whole()


def test_T07_T08_T09_stalls_time_out_and_a_slow_drip_within_the_timeout_is_kept(
    server: FaultServer, tmp_path
):
    seed = server.fixture("seed")
    server.route(SEED, stall(seed, after=0))  # T07: headers, then nothing
    server.route(IRAQ, silent())  # T08: not even a status line
    saudi = server.fixture("two-authors")
    server.route(SAUDI, drip(saudi, size=len(saudi) // 8 + 1, interval=0.05))  # T09, 0.4 s
    urls = [server.url + p for p in (SEED, IRAQ, SAUDI)]
    run = crawl(server, tmp_path / "a.db", "article", f"urls={','.join(urls)}", "feed_pages=0",
                settings={"DOWNLOAD_TIMEOUT": "2", "RETRY_TIMES": "0"})  # fmt: skip

    assert run.code == 1, run.log
    assert run.articles() == [f"{server.url}/saudi-israel-normalization"]
    for url in urls[:2]:
        failures, status, error = run.failure(url.rstrip("/"))
        assert failures == 1 and status is None and "took longer than 2" in error, error
    assert run.stats["rsarchive/fetch_failed"] == 2
    run.assert_whole()


def test_T09_a_drip_slower_than_the_timeout_is_cut_off(server: FaultServer, tmp_path):
    seed = server.fixture("seed")
    server.route(SEED, drip(seed, size=512, interval=0.1))  # 88 KB at 5 KB/s: 17 s
    run = crawl(server, tmp_path / "a.db", "article", f"url={server.url}{SEED}",
                settings={"DOWNLOAD_TIMEOUT": "2", "RETRY_TIMES": "0"})  # fmt: skip

    assert run.code == 1, run.log
    assert run.articles() == []
    assert "took longer than 2" in run.failure(f"{server.url}/{SEED_KEY}")[2]


def test_T10_malformed_status_lines_and_headers_fail_cleanly(server: FaultServer, tmp_path):
    seed = server.fixture("seed")
    server.route("/bad-status/", raw(b"HTTP/1.1 OK-ish\r\nContent-Length: 2\r\n\r\nhi"))
    server.route("/not-http/", raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    server.route("/bad-length/", raw(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n" + seed))
    # A header line without a colon and a NUL in a value: the page itself is fine.
    server.route(SEED, raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                           b"X-Odd: a\x00b\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                           % (len(seed), seed)))  # fmt: skip
    bad = [server.url + p for p in ("/bad-status/", "/not-http/", "/bad-length/")]
    run = crawl(server, tmp_path / "a.db", "article", f"urls={','.join([*bad, server.url + SEED])}",
                "feed_pages=0")  # fmt: skip

    assert run.code == 1, run.log
    assert "Traceback" not in run.log
    assert run.articles() == [f"{server.url}/{SEED_KEY}"]
    for url in bad:
        assert run.failure(url.rstrip("/"))[0] == 1, url
    run.assert_whole()


def test_T11_T12_retry_after_is_waited_for_or_given_up_past_the_maximum(
    server: FaultServer, tmp_path
):
    busy = ok(b"busy", "text/plain", 503, {"Retry-After": "1"})
    server.route(SEED, busy, ok(server.fixture("seed")))  # T11: one short wait, then the page
    server.route(IRAQ, ok(b"slow down", "text/plain", 429, {"Retry-After": "3600"}))  # T12
    urls = f"urls={server.url}{SEED},{server.url}{IRAQ}"
    run = crawl(server, tmp_path / "a.db", "article", urls, "feed_pages=0")

    assert run.code == 1, run.log
    assert run.articles() == [f"{server.url}/{SEED_KEY}"]
    assert run.stats["rsarchive/retry_after_waits"] == 1
    assert run.stats["rsarchive/retry_after_too_long"] == 1
    assert server.gets(IRAQ) == 1  # not hammered
    assert run.failure(server.url + IRAQ)[:2] == (1, 429)
    assert re.search(r"ERROR: Gave up .*us-strikes-iraq.*3600", run.log)


def test_T13_a_429_storm_on_the_feed_is_bounded_and_a_failure(server: FaultServer, tmp_path):
    storm = ok(b"", "text/plain", 429, {"Retry-After": "1"})
    server.route("/feeds/feed.rss", storm)
    server.route("/feed/", storm)
    server.route("/", storm)
    run = crawl(server, tmp_path / "a.db", "feed", settings={"RETRY_TIMES": "2"})

    assert run.code == 1, run.log
    # Each feed asked at most 1 + RETRY_TIMES times, whatever the server keeps saying.
    for path in ("/feeds/feed.rss", "/feed/", "/"):
        assert 1 <= server.gets(path) <= 3, (path, server.paths())
    assert run.articles() == []


def test_T14_T15_404_of_a_new_url_fails_410_of_an_archived_one_marks_it_removed(
    server: FaultServer, tmp_path
):
    db = tmp_path / "a.db"
    assert crawl(server, db, "article", f"url={server.url}{SEED}", "feed_pages=0").code == 0
    server.route(SEED, ok(b"<html><body>Gone</body></html>", status=410))
    run = crawl(server, db, "article", f"urls={server.url}{SEED},{server.url}/never-was/",
                "feed_pages=0")  # fmt: skip

    assert run.code == 1, run.log  # the 404 of a URL never archived is a failure
    ((removed, title),) = run.rows("SELECT removed_at, title FROM articles")
    assert removed is not None and title.startswith("What to make")
    assert run.stats["rsarchive/dropped/http_404"] == 1
    assert run.stats["rsarchive/articles_removed"] == 1
    # Recorded as settled: a 404 is the site's answer, not asked again every run.
    assert run.failure(f"{server.url}/never-was")[:2] == (0, 404)


def test_T19_redirects_to_file_data_and_ftp_are_never_followed(server: FaultServer, tmp_path):
    targets = {"/to-file/": "file:///etc/passwd", "/to-data/": "data:text/html,<h1>x</h1>",
               "/to-ftp/": "ftp://127.0.0.1/x"}  # fmt: skip
    for path, location in targets.items():
        server.route(path, redirect(location))
    urls = [server.url + p for p in targets]
    run = crawl(server, tmp_path / "a.db", "article", f"urls={','.join(urls)}")

    assert run.code == 1, run.log
    assert run.articles() == []
    for url in urls:
        assert run.failure(url.rstrip("/"))[:2] == (1, 302), url
    assert "root:" not in run.log
    assert run.rows("SELECT COUNT(*) FROM captures") == [(0,)]


def test_T20_T21_no_credentials_or_cookies_sent_and_a_hostile_referrer_policy_is_harmless(
    server: FaultServer, tmp_path
):
    seed = server.fixture("seed")
    server.route(SEED, ok(seed, headers={
        "Set-Cookie": "session=s3cret; Path=/",
        "Referrer-Policy": "\x7f\x01bogus, unsafe-url;;;, " + "x" * 5000,
    }))  # fmt: skip
    other_host = server.url.replace("127.0.0.1", "localhost")
    server.route(IRAQ, redirect(f"{other_host}{IRAQ}"))
    user = server.url.replace("http://", "http://user:pw@")
    run = crawl(server, tmp_path / "a.db", "article", f"url={user}{SEED}", "follow=1",
                "feed_pages=0")  # fmt: skip

    assert "Traceback" not in run.log
    assert f"{server.url}/{SEED_KEY}" in run.articles()
    for r in server.requests:
        assert "cookie" not in r.headers and "authorization" not in r.headers, r
        assert r.headers.get("host", "").startswith("127.0.0.1")
    # Followed teasers went out (the policy did not stop the crawl), none to the other host.
    assert server.gets("/jfk-assassination/") == 1
