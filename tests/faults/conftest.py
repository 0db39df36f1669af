"""Fault tests: the fault server, and `rsarchive crawl` runs against it with short timeouts."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import rsarchive

from faults.faultserver import FaultServer
from rsarchive.demo import FixtureSite

# Short timeouts and one retry: a fault costs seconds, not minutes, on a busy machine.
FAST = {
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "0",
    "RETRY_TIMES": "1",
    "DOWNLOAD_TIMEOUT": "4",
    "RSARCHIVE_RETRY_AFTER_MAX": "3",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "8",
}


@pytest.fixture
def server(fixture_site: FixtureSite) -> Iterator[FaultServer]:
    with FaultServer(fixture_site).running() as s:
        yield s


@dataclass
class Run:
    code: int
    log: str  # the run's log (stderr of `rsarchive crawl -v`)
    db: Path

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()

    @property
    def stats(self) -> dict:
        (raw,) = self.rows("SELECT stats FROM crawl_runs ORDER BY id DESC LIMIT 1")[0]
        return json.loads(raw)

    def failure(self, url: str) -> tuple | None:
        """(failures, last_status, last_error) of a URL in fetch_state, or None."""
        rows = self.rows(
            "SELECT failures, last_status, last_error FROM fetch_state WHERE url = ?", url
        )
        return rows[0] if rows else None

    def articles(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT url FROM articles ORDER BY url")]

    def assert_whole(self) -> None:
        """PRAGMA integrity_check is ok, and every stored page has its whole teaser set:
        each capture's article has exactly the teasers its page shows (none half-written)."""
        assert self.rows("PRAGMA integrity_check") == [("ok",)]
        for url, n in self.rows(
            "SELECT a.url, COUNT(t.id) FROM articles a LEFT JOIN teasers t ON t.page_url = a.url"
            " GROUP BY a.url"
        ):
            expected = EXPECTED_TEASERS.get(url.split("/", 3)[-1])
            if expected is not None:
                assert n >= expected, (url, n, expected)


# Teasers on the fixture pages the tests serve (path without the leading slash, normalised).
EXPECTED_TEASERS = {
    "2021/05/19/blinken-lavrov-iceland": 3,
    "us-strikes-iraq-2666381402": 2,
    "saudi-israel-normalization": 3,
}


def crawl(
    server: FaultServer,
    db: Path | str,
    spider: str = "article",
    *args: str,
    settings: dict[str, str] | None = None,
    log_dir: Path | None = None,
) -> Run:
    """`rsarchive crawl SPIDER` as cron runs it, against the fault server.

    ``db``: a SQLite file, or a database URL (then give ``log_dir``).
    """
    argv = ["crawl", spider, "--db", str(db), "-v"]
    if log_dir is not None:
        argv += ["--log-dir", str(log_dir)]
    for key, value in {**FAST, "RSARCHIVE_SITE_URL": server.url, **(settings or {})}.items():
        argv += ["-s", f"{key}={value}"]
    for arg in args:
        argv += ["-a", arg]
    proc = rsarchive(*argv)
    return Run(proc.returncode, proc.stderr + proc.stdout, Path(db))
