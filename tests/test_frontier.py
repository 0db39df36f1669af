"""Several crawler processes on one shared frontier (Redis) into one PostgreSQL archive.

Real servers on 127.0.0.1, started here and stopped after: Redis (``tests/redis_server.py``),
PostgreSQL (``tests/pg.py``) and a generated site of fixture-shaped pages that records every
request (``tests/replica_site.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT, rsarchive, scrapy_crawl
from pg import PostgresServer, postgres_server
from redis_server import RedisServer, redis_server
from replica_site import ReplicaSite, replica_site
from test_postgres import content, rows

PAGES = 500
# The per-host limits every worker shares (the test server checks them).
HOST_SLOTS = 3
DELAY = 0.03
LEASE = 3


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def site() -> Iterator[ReplicaSite]:
    with replica_site(PAGES) as server:
        yield server


def worker(db: str, site_url: str, log_dir: Path, *options: str) -> subprocess.Popen:
    """`rsarchive crawl sitemap` in its own process, as cron or a container starts it."""
    cmd = [
        sys.executable, "-m", "rsarchive.cli", "crawl", "sitemap", "--db", db,
        "--log-dir", str(log_dir), "-s", f"RSARCHIVE_SITE_URL={site_url}",
        "-s", "AUTOTHROTTLE_ENABLED=0", "-s", "RETRY_TIMES=0", *options,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out + err


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def runs(db: str) -> list[dict]:
    found = rows(db, "SELECT status, stats FROM crawl_runs ORDER BY id")
    return [
        {"status": r.status, **(json.loads(r.stats) if isinstance(r.stats, str) else r.stats or {})}
        for r in found
    ]


def test_workers_share_one_frontier_lose_nothing_when_killed_and_keep_the_host_limits(
    pg, redis, site, tmp_path
):
    # The reference: one process alone, no frontier, no delay.
    alone = pg.new_database()
    code, out = finish(worker(alone, site.url, tmp_path / "alone", "-s", "DOWNLOAD_DELAY=0"))
    assert code == 0, out
    reference = content(alone, received_only=True)
    assert len(reference["articles"]) > 400  # not vacuous: the replicated articles
    site.log.clear()
    site.max_active = 0
    site.latency = 0.1  # slow answers: the host's slots, not only its delay, are needed

    shared = pg.new_database()
    options = (
        "--frontier", redis.url, "-s", f"DOWNLOAD_DELAY={DELAY}",
        "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={HOST_SLOTS}",
        "-s", f"RSARCHIVE_FRONTIER_LEASE={LEASE}",
    )  # fmt: skip
    logs = tmp_path / "logs"
    workers = []
    for n in range(3):
        workers.append(worker(shared, site.url, logs, *options, "-s", f"RSARCHIVE_WORKER=w{n}"))
    wait_for(lambda: site.answered() >= 150, 120)
    os.kill(workers[1].pid, signal.SIGKILL)  # mid-run, with requests in flight
    answered_at_kill = site.answered()
    workers.append(worker(shared, site.url, logs, *options, "-s", "RSARCHIVE_WORKER=w3"))
    outcomes = [finish(proc) for proc in workers]

    assert outcomes[1][0] == -signal.SIGKILL
    for code, out in outcomes[:1] + outcomes[2:]:
        assert code == 0, out
    for log in logs.glob("*.log"):
        assert "ScrapyDeprecationWarning" not in log.read_text(), log
    # Every page archived once, and the archive as one process alone makes it.
    assert content(shared, received_only=True) == reference
    assert rows(shared, "SELECT url FROM captures GROUP BY url HAVING count(*) > 1") == []
    # The server saw every page once, but the few the killed worker had in flight.
    counts = site.counts()
    pages = site.article_paths
    assert all(counts[p] >= 1 for p in pages)
    repeated = {p: c for p, c in counts.items() if c > 1 and p in site.pages}
    assert sum(repeated.values()) - len(repeated) <= 8, repeated  # its CONCURRENT_REQUESTS
    assert counts["/sitemap.xml"] == 1
    assert counts["/robots.txt"] <= len(workers) + 1  # each worker's robots.txt, the spider's
    # The killed worker's requests went back in the queue; the late one took work.
    stats = runs(shared)
    assert len(stats) == 4
    assert sum(s.get("rsarchive/frontier/requeued", 0) for s in stats) >= 1
    assert answered_at_kill < PAGES
    joined = [s for s in stats if s.get("rsarchive/frontier_worker") and s["status"] != "running"]
    assert all(s.get("rsarchive/pages_stored", 0) > 0 for s in joined), stats
    # The host's limits held for all workers together.
    assert site.max_active <= HOST_SLOTS
    # Starts are DELAY apart on Redis's clock; allow a little jitter on the way to the server.
    assert site.busiest_window(2.0) <= 2.0 / DELAY + 1 + 10
    # The run is over: its keys are cleared (only the host's limiter remains, expiring).
    left = sorted(k.decode() for k in redis.client().keys("rsarchive:sitemap:*"))
    assert left == []


def test_a_retry_after_pauses_the_host_for_every_worker(redis, tmp_path):
    with replica_site(60, latency=0.02) as small:
        paused = small.article_paths[20]
        small.queued[paused] = [(429, {"Retry-After": "2", "Content-Type": "text/plain"}, b"")]
        db = f"sqlite:///{tmp_path / 'archive.db'}"
        options = (
            "--frontier", redis.url, "-s", "DOWNLOAD_DELAY=0.02", "-s", "RETRY_TIMES=2",
            "-s", "RSARCHIVE_FRONTIER_KEY=pause:%(spider)s",
        )  # fmt: skip
        workers = [
            worker(db, small.url, tmp_path / "logs", *options, "-s", f"RSARCHIVE_WORKER=w{n}")
            for n in range(2)
        ]
        for code, out in map(finish, workers):
            assert code == 0, out
        arrivals = sorted((arrived, path) for path, arrived, _ in small.log)
    refused = next(t for t, path in arrivals if path == paused)
    retried = [t for t, path in arrivals if path == paused][1]
    assert retried - refused >= 1.9
    # Besides the few already on their way, nobody asked the host anything while it was paused.
    during = [path for t, path in arrivals if refused + 0.5 < t < refused + 1.9]
    assert during == []
    assert len(arrivals) >= 60


def test_the_cron_lock_is_per_worker_with_a_frontier(redis, tmp_path):
    import fcntl

    db_file = tmp_path / "archive.db"
    lock = (tmp_path / "archive.db.lock.w1").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # worker w1 is running
    try:
        with replica_site(5) as small:
            args = (str(db_file), small.url, tmp_path / "logs", "--frontier", redis.url)
            code, out = finish(worker(*args, "-s", "RSARCHIVE_WORKER=w1"))
            assert code == 75, out
            assert "another crawl of this archive is running" in out
            # Another worker of the same archive runs beside it.
            code, out = finish(worker(*args, "-s", "RSARCHIVE_WORKER=w2"))
            assert code == 0, out
    finally:
        lock.close()
    assert len(rows(f"sqlite:///{db_file}", "SELECT id FROM articles")) >= 4


@pytest.mark.parametrize(
    ("frontier", "setting", "message"),
    [
        ("http://127.0.0.1:6379/0", "", "RSARCHIVE_FRONTIER_URL='http://127.0.0.1:6379/0'"),
        ("redis://:secret@127.0.0.1:{port}/0", "", "the frontier redis://:***@127.0.0.1:"),
        ("redis://127.0.0.1:{port}/0", "RSARCHIVE_FRONTIER_KEY=a:%(s)s", "is not a key prefix"),
    ],
)
def test_a_frontier_that_cannot_be_used_is_a_configuration_error(
    frontier, setting, message, tmp_path
):
    from pg import _free_port

    frontier = frontier.format(port=_free_port())  # nothing listens there
    result = rsarchive(
        "crawl", "sitemap", "--db", str(tmp_path / "a.db"), "--frontier", frontier,
        "-s", "RSARCHIVE_SITE_URL=http://127.0.0.1:9", "-s", setting or "LOG_LEVEL=INFO",
    )  # fmt: skip
    assert result.returncode == 78, result.stderr
    first = result.stderr.splitlines()[0]
    assert message in first, result.stderr
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_whose_redis_goes_away_stops_with_75_and_keeps_what_it_stored(tmp_path):
    with redis_server() as lost, replica_site(200, latency=0.05) as small:
        db = tmp_path / "archive.db"
        proc = worker(
            str(db), small.url, tmp_path / "logs", "--frontier", lost.url,
            "-s", "RSARCHIVE_FRONTIER_LEASE=2", "-s", "DOWNLOAD_DELAY=0.05",
        )  # fmt: skip
        wait_for(lambda: small.answered() >= 20, 60)
        lost.stop()
        code, out = finish(proc)
    assert code == 75, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["finish_reason"] == "frontier_unavailable"
    assert "Traceback" not in out
    # The pages fetched before are stored; those it could not send are recorded as failed.
    assert summary["stats"]["rsarchive/pages_stored"] >= 15
    assert rows(f"sqlite:///{db}", "SELECT count(*) AS n FROM captures")[0].n >= 15
    failed = rows(f"sqlite:///{db}", "SELECT count(*) AS n FROM fetch_state WHERE failures > 0")
    assert failed[0].n == summary["stats"].get("rsarchive/fetch_failed", 0)


def test_a_run_stopped_with_sigterm_is_resumed_by_the_next_worker(redis, tmp_path):
    with replica_site(120, latency=0.05) as small:
        db = tmp_path / "archive.db"
        options = (
            "--frontier", redis.url, "-s", "DOWNLOAD_DELAY=0.03",
            "-s", "RSARCHIVE_FRONTIER_KEY=resume:%(spider)s",
        )  # fmt: skip
        first = worker(str(db), small.url, tmp_path / "logs", *options)
        wait_for(lambda: small.answered() >= 20, 60)
        first.send_signal(signal.SIGTERM)
        code, out = finish(first)
        assert code == 3, out
        client = redis.client()
        # What it had not done is back in the queue, nothing is held.
        assert client.zcard("resume:sitemap:requests") > 0
        assert client.keys("resume:sitemap:inflight:*") == []
        code, out = finish(worker(str(db), small.url, tmp_path / "logs", *options))
        assert code == 0, out
        second_log = max((tmp_path / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime)
        assert "joining a seeded run" in second_log.read_text()
        counts = small.counts()
    assert all(counts[path] == 1 for path in small.article_paths), counts
    assert counts["/sitemap.xml"] == 1
    assert rows(f"sqlite:///{db}", "SELECT count(*) AS n FROM captures")[0].n == 120
    assert client.keys("resume:sitemap:*") == []


SPIDER_KEY = "s:%(spider)s"


def test_scrapy_crawl_takes_the_frontier_as_a_setting(redis, tmp_path):
    with replica_site(30) as small:
        result = scrapy_crawl(
            "sitemap",
            tmp_path / "archive.db",
            small.url,
            settings={"RSARCHIVE_FRONTIER_URL": redis.url, "RSARCHIVE_FRONTIER_KEY": SPIDER_KEY},
        )
        counts = small.counts()
    assert result.returncode == 0, result.log
    assert "this worker seeds the run" in result.log
    assert "'scheduler/dequeued/redis': 32" in result.log  # robots.txt, sitemap, 30 pages
    assert result.rows("SELECT count(*) FROM captures") == [(30,)]
    assert all(counts[path] == 1 for path in small.article_paths)
    assert redis.client().keys("s:*") == []  # the run is over: its keys are cleared


def test_a_worker_without_robots_txt_stops_with_75_and_leaves_the_run_to_the_next(redis, tmp_path):
    with replica_site(20) as small:
        unavailable = (503, {"Content-Type": "text/plain"}, b"")
        small.queued["/robots.txt"] = [unavailable]
        db = str(tmp_path / "archive.db")
        options = (
            "--frontier", redis.url, "-s", "DOWNLOAD_DELAY=0",
            "-s", "RSARCHIVE_FRONTIER_KEY=robots:%(spider)s",
        )  # fmt: skip
        code, out = finish(worker(db, small.url, tmp_path / "logs", *options))
        assert code == 75, out
        assert "robots_unavailable" in out
        # Its start request (the spider's robots.txt) went back to the queue, not lost.
        assert redis.client().zcard("robots:sitemap:requests") == 1
        code, out = finish(worker(db, small.url, tmp_path / "logs", *options))
        assert code == 0, out
    assert rows(f"sqlite:///{db}", "SELECT count(*) AS n FROM captures")[0].n == 20
    assert redis.client().keys("robots:*") == []
