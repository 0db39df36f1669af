"""`scrapy crawl wayback` against a loopback Wayback Machine (CDX JSON and id_ captures)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import SiteServer, rsarchive, running_site, scrapy_crawl

SEED_PATH = "/2021/05/19/blinken-lavrov-iceland/"
OLD, NEW = "20190301120000", "20210601080000"


class Wayback:
    """A Wayback Machine on loopback: the CDX API (paged by resumeKey) and raw captures."""

    def __init__(self, server: SiteServer, site: SiteServer) -> None:
        self.server, self.site = server, site
        self.captures: list[tuple[str, str, str, bytes]] = []  # timestamp, url, mime, body
        self.cdx_queries: list[dict[str, str]] = []
        server.overrides["/robots.txt"] = (404, {}, b"")
        server.handlers["/cdx/search/cdx"] = self.cdx

    def add(self, timestamp: str, path: str, body: bytes, mime: str = "text/html") -> str:
        url = f"{self.site.url}{path}"
        self.captures.append((timestamp, url, mime, body))
        kind = f"{mime}; charset=utf-8" if mime == "text/html" else mime
        answer = (
            200,
            {"Content-Type": kind, "X-Archive-Orig-Etag": '"abc"', "X-Archive-Orig-Server": "rm"},
            body,
        )
        # As the Wayback Machine, which looks a capture up by its canonical (SURT) key: the
        # path with or without its trailing slash.
        self.server.overrides[f"/web/{timestamp}id_/{url}"] = answer
        self.server.overrides[f"/web/{timestamp}id_/{url.rstrip('/')}"] = answer
        return url

    def cdx(self, path: str) -> tuple[int, dict[str, str], bytes]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        self.cdx_queries.append(query)
        assert query["output"] == "json" and query["collapse"] == "digest"
        assert query["filter"] == "statuscode:200" and query["showResumeKey"] == "true"
        start = query.get("from", "0")
        rows = [
            [ts, url, "200", f"D{i}", mime]
            for i, (ts, url, mime, _) in enumerate(sorted(self.captures))
            if ts >= start.ljust(14, "0")
        ]
        # Two captures per answer: the rest comes with the resumeKey.
        offset = int(query.get("resumeKey", "0"))
        page = rows[offset : offset + 2]
        doc: list = [["timestamp", "original", "statuscode", "digest", "mimetype"], *page]
        if offset + 2 < len(rows):
            doc += [[], [str(offset + 2)]]
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    def fetched(self) -> list[str]:
        return [p for p in self.server.requests if p.startswith("/web/")]


@pytest.fixture
def wayback(fixture_site, site_server) -> Iterator[Wayback]:
    with running_site(fixture_site) as server:
        yield Wayback(server, site_server)


def crawl(wayback: Wayback, db, *args: str):
    result = scrapy_crawl(
        "wayback", db, wayback.site.url, *args,
        settings={"RSARCHIVE_WAYBACK_URL": wayback.server.url, "RETRY_TIMES": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.log
    return result


def test_wayback_captures_become_revisions_at_their_own_time(wayback, site_server, tmp_path):
    status, _, page = site_server.site.respond(SEED_PATH, origin=site_server.url)
    assert status == 200
    edited = page.replace(b"amicable in tone", b"frosty and guarded in tone")
    seed = wayback.add(OLD, SEED_PATH, page)
    wayback.add(NEW, SEED_PATH, edited)
    wayback.add("20200101000000", "/media/logo.png", b"\x89PNG", mime="image/png")
    # The IA asks bots to slow down with a 429 and Retry-After: the capture is fetched after it.
    wayback.server.queued[f"/web/{OLD}id_/{seed}"] = [(429, {"Retry-After": "1"}, b"")]

    db = tmp_path / "a.db"
    result = crawl(wayback, db, "-a", "live=0")
    # Two CDX pages (resumeKey), the image listed but not fetched, the 429 retried once.
    assert [q.get("resumeKey") for q in wayback.cdx_queries] == [None, "2"], result.log
    assert wayback.cdx_queries[0]["url"] == f"{urlsplit(site_server.url).netloc}/*"
    assert wayback.fetched().count(f"/web/{OLD}id_/{seed}") == 2
    assert not any("logo.png" in p for p in wayback.fetched())
    assert not site_server.requests  # live=0: the live site is not asked
    assert all(ua.startswith("rsarchive/") for ua in wayback.server.user_agents)

    key = seed.rstrip("/")
    revisions = result.rows(
        "SELECT r.captured_at, c.fetched_at, c.requested_url, c.headers FROM revisions r"
        " JOIN articles a ON a.id = r.article_id JOIN captures c ON c.id = r.capture_id"
        " WHERE a.url = ? ORDER BY r.captured_at",
        key,
    )
    assert [(r[0], r[1]) for r in revisions] == [
        ("2019-03-01T12:00:00Z", "2019-03-01T12:00:00Z"),
        ("2021-06-01T08:00:00Z", "2021-06-01T08:00:00Z"),
    ]
    assert revisions[0][2] == f"{wayback.server.url}/web/{OLD}id_/{seed}"
    # The original answer's headers, as the Wayback Machine handed them on.
    assert json.loads(revisions[0][3])["Etag"] == '"abc"'
    (body,) = result.rows("SELECT body_text FROM articles WHERE url = ?", key)[0]
    assert "frosty and guarded in tone" in body

    diff = rsarchive("diff", key, "--db", str(db))
    assert diff.returncode == 0 and "+Update 5/19" in diff.stdout

    # A second run asks only for newer captures, and fetches none of the held ones.
    before = len(wayback.fetched())
    crawl(wayback, db, "-a", "live=0")
    assert wayback.cdx_queries[-1]["from"] == "20210601080001"
    assert len(wayback.fetched()) == before
    later = wayback.add("20230101000000", SEED_PATH, page)
    crawl(wayback, db, "-a", "live=0")
    assert wayback.fetched()[before:] == [f"/web/20230101000000id_/{later}"]
    assert result.rows("SELECT count(*) FROM revisions") == [(3,)]
    assert not site_server.requests


def test_wayback_narrows_to_one_page_and_years_and_refuses_a_bad_year(wayback, tmp_path):
    db = tmp_path / "a.db"
    crawl(wayback, db, "-a", f"url={SEED_PATH}", "-a", "from=2019", "-a", "to=2024-06")
    (query,) = wayback.cdx_queries
    assert query["url"] == f"{wayback.site.url}{SEED_PATH}"
    assert (query["from"], query["to"]) == ("2019", "202406")

    bad = scrapy_crawl(
        "wayback", db, wayback.site.url, "-a", "from=last year",
        settings={"RSARCHIVE_WAYBACK_URL": wayback.server.url},
    )  # fmt: skip
    assert "from='last year': give a year" in bad.log
    assert len(wayback.cdx_queries) == 1


def test_a_capture_whose_fetch_failed_is_fetched_by_the_next_run(wayback, site_server, tmp_path):
    _, _, page = site_server.site.respond(SEED_PATH, origin=site_server.url)
    edited = page.replace(b"amicable in tone", b"frosty and guarded in tone")
    seed = wayback.add(OLD, SEED_PATH, page)
    wayback.add(NEW, SEED_PATH, edited)
    wayback.server.queued[f"/web/{OLD}id_/{seed}"] = [(500, {}, b"")] * 2  # and the retry

    db = tmp_path / "a.db"
    first = crawl(wayback, db, "-a", "live=0")
    assert first.rows("SELECT fetched_at FROM captures") == [("2021-06-01T08:00:00Z",)]
    # The next run lists only newer captures (none), and fetches the failed one again: it joins
    # the history before the newer one, and the article keeps the newer text.
    crawl(wayback, db, "-a", "live=0")
    assert wayback.cdx_queries[-1]["from"] == "20210601080001"
    key = seed.rstrip("/")
    assert first.rows(
        "SELECT r.captured_at FROM revisions r JOIN articles a ON a.id = r.article_id"
        " WHERE a.url = ? ORDER BY r.captured_at",
        key,
    ) == [("2019-03-01T12:00:00Z",), ("2021-06-01T08:00:00Z",)]
    (body,) = first.rows("SELECT body_text FROM articles WHERE url = ?", key)[0]
    assert "frosty and guarded in tone" in body
    history = rsarchive("history", key, "--db", str(db))
    assert history.returncode == 0 and "2 revisions" in history.stdout


GONE_PATH = "/2020/02/14/pentagon-budget-request-explained/"  # the site's 404 page
LIVE_PATH = "/us-strikes-iraq-2666381402"


def crawl_cli(wayback: Wayback, db, *args: str):
    """``rsarchive crawl wayback``: the documented exit code and the one-line JSON summary."""
    settings = {
        "RSARCHIVE_SITE_URL": wayback.site.url,
        "RSARCHIVE_WAYBACK_URL": wayback.server.url,
        "DOWNLOAD_DELAY": "0",
        "AUTOTHROTTLE_ENABLED": "0",
        "RETRY_TIMES": "0",
    }
    options = [f"-s{k}={v}" for k, v in settings.items()]
    return rsarchive("crawl", "wayback", "--db", str(db), *args, *options)


def revisions(db, url: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT r.captured_at FROM revisions r JOIN articles a ON a.id = r.article_id"
                " WHERE a.url = ? ORDER BY r.captured_at",
                (url,),
            )
        ]


def test_the_live_site_is_asked_after_the_captures(wayback, site_server, tmp_path):
    site = site_server.site
    _, _, seed = site.respond(SEED_PATH, origin=site_server.url)
    _, _, live = site.respond(LIVE_PATH, origin=site_server.url)
    gone_status, gone_headers, gone = site.respond(GONE_PATH, origin=site_server.url)
    assert gone_status == 404
    # The seed was deleted from the site since: the live site answers 404 for it.
    site_server.overrides[SEED_PATH] = (404, gone_headers, gone)
    seed_url = wayback.add(OLD, SEED_PATH, seed)
    wayback.add(NEW, SEED_PATH, seed.replace(b"amicable in tone", b"frosty in tone"))
    live_url = wayback.add(OLD, LIVE_PATH, live.replace(b"<p>", b"<p>Draft. ", 1))

    db = tmp_path / "a.db"
    result = crawl_cli(wayback, db)
    assert result.returncode == 0, result.stderr
    # Once each, after its captures; robots.txt first, as for every fetch from the site.
    asked = ["/robots.txt", *sorted([SEED_PATH, LIVE_PATH])]
    assert [site_server.requests[0], *sorted(site_server.requests[1:])] == asked
    assert len(wayback.fetched()) == 3
    # ... after every capture was fetched (one process's clock: the order, not a duration).
    last_capture = max(t for t, path in wayback.server.log if path.startswith("/web/"))
    assert min(t for t, path in site_server.log if path != "/robots.txt") > last_capture

    with sqlite3.connect(db) as conn:
        removed = dict(conn.execute("SELECT url, removed_at FROM articles"))
        assert conn.execute("SELECT exit_code FROM crawl_runs").fetchall() == [(0,)]
        (body,) = conn.execute(
            "SELECT body_text FROM articles WHERE url = ?", (seed_url.rstrip("/"),)
        ).fetchone()
        (live_body,) = conn.execute(
            "SELECT body_text FROM articles WHERE url = ?", (live_url,)
        ).fetchone()
    # The deleted article is back, with its history, and marked removed (its text kept).
    assert removed[seed_url.rstrip("/")] is not None
    assert revisions(db, seed_url.rstrip("/")) == ["2019-03-01T12:00:00Z", "2021-06-01T08:00:00Z"]
    assert "frosty in tone" in body
    # The live one: its current version is the newest revision, after the capture.
    assert removed[live_url] is None
    live_history = revisions(db, live_url)
    assert len(live_history) == 2 and live_history[0] == "2019-03-01T12:00:00Z"
    assert live_history[1] > "2025"
    assert "Draft." not in live_body

    # A run that stores no new capture asks the live site nothing.
    again = crawl_cli(wayback, db)
    assert again.returncode == 0, again.stderr
    assert len(site_server.requests) == 3


def test_a_failed_live_check_is_recorded_and_live0_asks_nothing(wayback, site_server, tmp_path):
    _, _, seed = site_server.site.respond(SEED_PATH, origin=site_server.url)
    seed_url = wayback.add(OLD, SEED_PATH, seed)
    site_server.overrides[SEED_PATH] = (503, {}, b"")
    # A capture the pipeline drops (nothing in it) is not asked for on the live site.
    wayback.add(OLD, "/empty-page/", b"<html><body></body></html>")

    db = tmp_path / "a.db"
    failed = crawl_cli(wayback, db)
    assert failed.returncode == 1, failed.stderr
    assert "dropped/no_content: 1" in failed.stderr
    assert site_server.requests == ["/robots.txt", SEED_PATH]
    with sqlite3.connect(db) as conn:
        state = conn.execute(
            "SELECT failures, last_status FROM fetch_state WHERE url = ?", (seed_url.rstrip("/"),)
        ).fetchall()
        assert conn.execute("SELECT removed_at FROM articles").fetchall() == [(None,)]
    assert state == [(1, 503)]

    # live=0: a pure back-fill; the new capture is stored, the site is not asked.
    wayback.add(NEW, SEED_PATH, seed)
    only = crawl_cli(wayback, db, "-a", "live=0")
    # (The empty capture is fetched again, as every dropped page is, and dropped again.)
    assert only.returncode == 1 and "failure (dropped/no_content: 1)" in only.stderr
    assert site_server.requests == ["/robots.txt", SEED_PATH]
    assert len(revisions(db, seed_url.rstrip("/"))) == 1  # the same body: no new revision
    assert wayback.fetched()[-1] == f"/web/{NEW}id_/{seed_url}"

    bad = crawl_cli(wayback, db, "-a", "live=yes")
    assert bad.returncode == 64
    assert "live='yes': give 1" in bad.stderr + bad.stdout
