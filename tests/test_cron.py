"""`rsarchive crawl` as cron runs it: lock, log file and JSON summary, exit codes, SIGTERM,
robots.txt failures and Retry-After; real subprocesses against the fixture site on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import SiteServer

from rsarchive.middlewares import retry_after_seconds
from rsarchive.outcome import exit_code

RSARCHIVE = Path(sys.executable).parent / "rsarchive"  # the installed console script

# `rsarchive` with ScrapyDeprecationWarning turned into an error (as conftest does for scrapy).
_STRICT = (
    "import sys, warnings; from scrapy.exceptions import ScrapyDeprecationWarning as W; "
    "warnings.simplefilter('error', W); from rsarchive.cli import main; "
    "sys.argv[0] = 'rsarchive'; sys.exit(main())"
)
FAST = {"DOWNLOAD_DELAY": "0", "AUTOTHROTTLE_ENABLED": "0", "RETRY_TIMES": "0"}
ARTICLES = ("seed", "two-authors", "us-strikes-iraq", "inline-media")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    db: Path

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()


def command(
    server: SiteServer, db: Path, spider: str, *args: str, settings: dict | None = None
) -> list[str]:
    cmd = [sys.executable, "-c", _STRICT, "crawl", spider, "--db", str(db), *args]
    for key, value in {"RSARCHIVE_SITE_URL": server.url, **FAST, **(settings or {})}.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    return {**env, **extra}


def rsarchive_crawl(
    server: SiteServer,
    db: Path,
    spider: str,
    *args: str,
    settings: dict | None = None,
    env: dict | None = None,
) -> Run:
    proc = subprocess.run(
        command(server, db, spider, *args, settings=settings),
        env=env or clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "ScrapyDeprecationWarning" not in proc.stderr + log_text(db), proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr, db)


def urls(server: SiteServer, *cases: str) -> str:
    return "urls=" + ",".join(server.page_url(c) for c in cases)


def path_of(server: SiteServer, case: str) -> str:
    return urlsplit(server.page_url(case)).path


def log_files(db: Path) -> list[Path]:
    """The run logs, oldest first: two runs started in one second are `<stamp>-<spider>.log`
    then `<stamp>-<spider>.1.log`, which a plain sort of the names puts the wrong way round."""

    def started(path: Path) -> tuple[str, int]:
        stem, _, n = path.name.removesuffix(".log").rpartition(".")
        return (stem, int(n)) if n.isdigit() else (path.name.removesuffix(".log"), 0)

    return sorted((db.parent / "logs").glob("*.log"), key=started)


def log_text(db: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in log_files(db))


def summary_of(log: Path) -> dict:
    return json.loads(log.read_text(encoding="utf-8").splitlines()[-1])


def run_row(db: Path, run_id: int) -> dict:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM crawl_runs WHERE id = ?", (run_id,)).fetchone())


def wait_for(predicate, what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class Gate:
    """Holds the answers to some pages until the test opens it (bounded: 60 s at most), so a
    run is still busy when the test acts on it, however slow the machine."""

    def __init__(self, server: SiteServer, *cases: str) -> None:
        self.event = threading.Event()
        self.waiting = 0
        for case in cases:
            server.handlers[path_of(server, case)] = self._held(server)

    def _held(self, server: SiteServer):
        def answer(path: str) -> tuple[int, dict[str, str], bytes]:
            self.waiting += 1
            self.event.wait(timeout=60)
            return server.site.respond(path, origin=server.url)

        return answer

    def open(self) -> None:
        self.event.set()


def stop(proc: subprocess.Popen, db: Path, gate: Gate) -> str:
    """SIGTERM a run whose page the gate holds; once it took the signal, let the page go (the
    run finishes it and stops). Its stderr."""
    proc.send_signal(signal.SIGTERM)
    try:
        wait_for(lambda: "Received SIGTERM" in log_text(db), "the SIGTERM to be taken")
    finally:
        gate.open()
        _, stderr = proc.communicate(timeout=60)
    return stderr


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0


# -- success: silent, one log file ending in the run's summary ------------------------------


def test_a_good_run_is_silent_and_its_log_ends_with_the_run_row_as_json(site_server, tmp_path):
    db = tmp_path / "archive.db"
    run = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed"))
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    (log,) = log_files(db)
    assert log.name.endswith("-article.log")
    text = log.read_text(encoding="utf-8")
    assert "Spider closed (finished)" in text
    assert "[alembic" not in text  # its INFO lines are silenced
    summary = summary_of(log)
    row = run_row(db, summary["run_id"])
    for key in ("spider", "started_at", "finished_at", "status", "finish_reason", "exit_code"):
        assert summary[key] == row[key], key
    assert (summary["status"], summary["finish_reason"], summary["exit_code"]) == (
        "finished",
        "finished",
        0,
    )
    assert summary["args"] == json.loads(row["args"]) == {"urls": site_server.page_url("seed")}
    stats = json.loads(row["stats"])
    assert summary["stats"]["rsarchive/pages_stored"] == stats["rsarchive/pages_stored"] == 1
    assert summary["log_file"] == str(log)
    assert (db.parent / "archive.db.lock").read_text().split()[0].isdigit()


def test_env_i_from_the_root_directory_with_absolute_paths(site_server, tmp_path):
    db = tmp_path / "cron" / "archive.db"
    logs = tmp_path / "cron-logs"
    url = site_server.page_url("seed")
    cmd = ["env", "-i", "PATH=/usr/bin:/bin", str(RSARCHIVE), "crawl", "article",
           "-a", f"url={url}", "--db", str(db), "--log-dir", str(logs)]  # fmt: skip
    for key, value in {"RSARCHIVE_SITE_URL": site_server.url, **FAST}.items():
        cmd += ["-s", f"{key}={value}"]
    proc = subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=120, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    (log,) = logs.glob("*-article.log")
    assert summary_of(log)["exit_code"] == 0
    # Project settings were loaded without scrapy.cfg: our pipeline stored the page.
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (1,)
    (user_agent,) = site_server.user_agents
    assert user_agent.startswith("rsarchive/")


# -- exit codes from real runs ------------------------------------------------------------------


def test_failed_fetches_exit_1_and_say_why_on_stderr(site_server, tmp_path):
    db = tmp_path / "a.db"
    site_server.overrides[path_of(site_server, "two-authors")] = (500, {}, b"oops")
    missing = f"{site_server.url}/2020/01/01/never-was/"
    run = rsarchive_crawl(
        site_server, db, "article", "-a", urls(site_server, "seed", "two-authors") + "," + missing
    )
    assert run.returncode == 1
    reason, human, line = run.stderr.splitlines()
    assert "finished with 2 failures" in reason
    assert re.fullmatch(
        r"3 pages: 1 new article, 0 changed, 0 unchanged, 5 teasers \(5 new\), "
        r"2 failed \(fetch_failed, http_404\) — \d+ s",
        human,
    ), human
    (logged,) = [ln for ln in log_text(db).splitlines() if "INFO: summary: " in ln]
    assert human.split(" — ")[0] in logged  # the log has it too (so has `scrapy crawl`'s)
    assert "fetch_failed: 1" in reason and "dropped/http_404: 1" in reason
    summary = json.loads(line)
    assert (summary["status"], summary["exit_code"]) == ("finished", 1)
    assert run_row(db, summary["run_id"])["exit_code"] == 1
    assert run.rows("SELECT count(*) FROM articles") == [(1,)]


def test_a_404_for_an_archived_article_is_recorded_not_a_failure(site_server, tmp_path):
    db = tmp_path / "a.db"
    assert (
        rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed")).returncode == 0
    )
    site_server.overrides[path_of(site_server, "seed")] = (410, {}, b"<html>Gone</html>")
    run = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed"))
    assert (run.returncode, run.stderr) == (0, "")
    assert run.rows("SELECT removed_at IS NOT NULL FROM articles") == [(1,)]
    # Still recorded, still not a failure, on the next run.
    again = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed"))
    assert again.returncode == 0
    assert summary_of(log_files(db)[-1])["stats"]["rsarchive/gone_archived"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("nosuchspider",),
            "no spider 'nosuchspider': choose one of article, feed, sitemap, wayback",
        ),
        (("article", "-a", "url"), "-a 'url': expected NAME=VALUE"),
        (("article", "-a", "url=/x/", "-s", "LOG_LEVEL"), "-s 'LOG_LEVEL': expected NAME=VALUE"),
    ],
)
def test_usage_errors_exit_64_before_anything_runs(site_server, tmp_path, args, message):
    db = tmp_path / "a.db"
    proc = subprocess.run(
        [sys.executable, "-c", _STRICT, "crawl", *args, "--db", str(db)],
        env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 64
    assert proc.stderr == f"rsarchive crawl: {message}\n"
    assert not db.exists() and log_files(db) == []
    assert site_server.requests == []


def test_a_spider_usage_error_exits_64_and_is_recorded(site_server, tmp_path):
    db = tmp_path / "a.db"
    run = rsarchive_crawl(site_server, db, "article")  # no URL
    assert run.returncode == 64
    assert "no URL given" in run.stderr.splitlines()[0]
    # Recorded as a failed run, as a configuration error is.
    assert run.rows("SELECT status, finish_reason, exit_code FROM crawl_runs") == [
        ("failed", "usage_error", 64)
    ]


def test_a_database_that_cannot_be_opened_exits_74(site_server, tmp_path):
    db = tmp_path / "a.db"
    db.write_bytes(b"this is not a SQLite database, it is a text file\n" * 100)
    run = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed"))
    assert run.returncode == 74
    reason, line = run.stderr.splitlines()
    assert "cannot open the archive: file is not a database (exit 74)" in reason
    summary = json.loads(line)
    assert (summary["run_id"], summary["finish_reason"], summary["exit_code"]) == (
        None,
        "database_error",
        74,
    )
    assert summary_of(log_files(db)[0]) == summary
    assert [p for p in site_server.requests if p != "/robots.txt"] == []


@pytest.mark.parametrize(
    ("settings", "env"),
    [
        ({"CONCURRENT_REQUESTS": "lots"}, {}),
        ({}, {"RSARCHIVE_RETRY_AFTER_MAX": "five minutes"}),
        ({"LOG_LEVEL": "LOUD"}, {}),
    ],
)
def test_a_bad_setting_exits_78(site_server, tmp_path, settings, env):
    db = tmp_path / "a.db"
    run = rsarchive_crawl(
        site_server, db, "article", "-a", urls(site_server, "seed"),
        settings=settings, env=clean_env(**env),
    )  # fmt: skip
    assert run.returncode == 78, run.stderr
    assert "Traceback" not in run.stderr
    assert site_server.requests == []


@pytest.mark.parametrize(
    ("spider", "settings", "env", "message"),
    [
        (
            "feed",
            {"RSARCHIVE_FEED_MAX_PAGES": "abc"},
            {},
            "RSARCHIVE_FEED_MAX_PAGES='abc' is not a whole number",
        ),
        ("feed", {"RSARCHIVE_FEED_MAX_PAGES": "0"}, {}, "RSARCHIVE_FEED_MAX_PAGES=0 is below 1"),
        (
            "feed",
            {},
            {"RSARCHIVE_FEED_RECHECK_HOURS": "daily"},
            "RSARCHIVE_FEED_RECHECK_HOURS='daily' is not a number",
        ),
        (
            "feed",
            {},
            {"RSARCHIVE_FEED_MAX_PAGES": "many"},
            "RSARCHIVE_FEED_MAX_PAGES='many' is not a whole number",
        ),
        (
            "article",
            {"RSARCHIVE_FOLLOW_MAX": "lots"},
            {},
            "RSARCHIVE_FOLLOW_MAX='lots' is not a whole number",
        ),
        (
            "sitemap",
            {},
            {"RSARCHIVE_PROGRESS_INTERVAL": "often"},
            "RSARCHIVE_PROGRESS_INTERVAL='often' is not a number",
        ),
        (
            "article",
            {"RSARCHIVE_SITE_URL": "example.org"},
            {},
            "RSARCHIVE_SITE_URL='example.org' is not a site URL",
        ),
        ("feed", {"RSARCHIVE_SITE_URL": ""}, {}, "RSARCHIVE_SITE_URL='' is not a site URL"),
        (
            "sitemap",
            {"RSARCHIVE_SITE_URL": "ftp://example.org"},
            {},
            "RSARCHIVE_SITE_URL='ftp://example.org' is not a site URL",
        ),
    ],
)
def test_a_setting_the_spider_cannot_use_exits_78_naming_it(
    site_server, tmp_path, spider, settings, env, message
):
    db = tmp_path / "a.db"
    args = ["-a", urls(site_server, "seed")] if spider == "article" else []
    run = rsarchive_crawl(site_server, db, spider, *args, settings=settings, env=clean_env(**env))
    assert run.returncode == 78, run.stderr
    reason, line = run.stderr.splitlines()
    assert f"configuration error: {message}" in reason
    assert "Traceback" not in run.stderr + log_text(db)
    summary = json.loads(line)
    assert (summary["status"], summary["finish_reason"], summary["exit_code"]) == (
        "failed",
        "config_error",
        78,
    )
    assert message in summary["stats"]["rsarchive/config_error"]
    assert site_server.requests == []  # not even robots.txt


def test_a_bad_setting_read_by_a_middleware_names_it(site_server, tmp_path):
    db = tmp_path / "a.db"
    run = rsarchive_crawl(
        site_server, db, "article", "-a", urls(site_server, "seed"),
        env=clean_env(RSARCHIVE_RETRY_AFTER_MAX="five minutes"),
    )  # fmt: skip
    assert run.returncode == 78, run.stderr
    assert (
        "the crawl could not start: configuration error: "
        "RSARCHIVE_RETRY_AFTER_MAX='five minutes' is not a number (exit 78)"
    ) in run.stderr.splitlines()[0]


def test_the_pipeline_gets_its_exit_codes_without_the_command_line_package():
    code = (
        "import sys, rsarchive.outcome, rsarchive.pipelines.store; "
        "print('rsarchive.cli' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == "False"
    from rsarchive import cli, exitcodes

    assert (
        (cli.EXIT_CONFIG, cli.EXIT_USAGE)
        == (exitcodes.EXIT_CONFIG, exitcodes.EXIT_USAGE)
        == (
            78,
            64,
        )
    )


@pytest.mark.parametrize(
    ("reason", "stats", "code"),
    [
        ("finished", {}, 0),
        ("finished", {"rsarchive/fetch_failed": 1}, 1),
        ("finished", {"rsarchive/dropped/http_404": 1, "rsarchive/gone_archived": 1}, 0),
        ("finished", {"rsarchive/dropped/http_404": 2, "rsarchive/gone_archived": 1}, 1),
        ("closespider_pagecount", {}, 0),
        ("closespider_errorcount", {}, 1),
        ("shutdown", {"rsarchive/fetch_failed": 3}, 3),
        ("closespider_timeout", {}, 3),
        ("memusage_exceeded", {}, 3),
        (None, {}, 3),
        ("finished", {"rsarchive/usage_error": "no URL given"}, 64),
        ("database_error", {"rsarchive/database_error": "locked"}, 74),
        ("robots_unavailable", {"rsarchive/fetch_failed": 2}, 75),
        ("schema_error", {"rsarchive/schema_error": "schema is older"}, 78),
        ("config_error", {"rsarchive/config_error": "RSARCHIVE_FOLLOW_MAX='x'"}, 78),
        ("start_error", {}, 78),
    ],
)
def test_exit_code_of_a_close_reason_and_stats(reason, stats, code):
    assert exit_code(reason, stats) == code


# -- the lock -----------------------------------------------------------------------------------


def test_a_second_run_while_one_is_active_exits_75_naming_it_and_writes_nothing(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    # The first run's pages are held until the end: it cannot finish before the SIGTERM below,
    # however long the second run takes to start on a busy machine (it once did, and the
    # SIGTERM found it exiting: -15).
    gate = Gate(site_server, *ARTICLES)
    first = subprocess.Popen(
        command(site_server, db, "article", "-a", urls(site_server, *ARTICLES),
                settings={"CONCURRENT_REQUESTS": "1"}),
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: count(db, "SELECT count(*) FROM crawl_runs") == 1, "the first run")
        logs_before = log_files(db)
        second = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed"))
        assert second.returncode == 75
        assert second.stderr == (
            f"rsarchive crawl: another crawl of this archive is running (pid {first.pid}, "
            f"article since {(db.parent / 'a.db.lock').read_text().split()[2]}; "
            f"lock {db}.lock); try again later\n"
        )
        assert second.stdout == ""
        assert log_files(db) == logs_before
        assert count(db, "SELECT count(*) FROM crawl_runs") == 1
        assert first.poll() is None  # still running, its page held
    finally:
        stop(first, db, gate)
    assert first.returncode == 3


# -- SIGTERM ------------------------------------------------------------------------------------


def test_sigterm_keeps_committed_pages_whole_marks_the_run_and_the_next_run_finishes(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    gate = Gate(site_server, *ARTICLES[1:])  # held until the SIGTERM is taken
    proc = subprocess.Popen(
        command(site_server, db, "article", "-a", urls(site_server, *ARTICLES),
                settings={"CONCURRENT_REQUESTS": "1"}),
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: count(db, "SELECT count(*) FROM captures") >= 1, "the first page")
    wait_for(lambda: gate.waiting == 1, "the second page to be asked for")
    stderr = stop(proc, db, gate)
    assert proc.returncode == 3, stderr
    assert "stopped early (shutdown)" in stderr
    run = Run(proc.returncode, "", stderr, db)
    assert run.rows("SELECT status, finish_reason, exit_code FROM crawl_runs") == [
        ("interrupted", "shutdown", 3)
    ]
    assert run.rows("PRAGMA integrity_check") == [("ok",)]
    stored = run.rows("SELECT url FROM articles")
    assert 1 <= len(stored) < len(ARTICLES)

    # The next run archives every page; the reference is one uninterrupted run.
    again = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, *ARTICLES))
    assert again.returncode == 0, again.stderr
    reference = rsarchive_crawl(
        site_server, tmp_path / "ref.db", "article", "-a", urls(site_server, *ARTICLES)
    )
    whole = (
        "SELECT a.url, a.content_hash, a.word_count,"
        " (SELECT count(*) FROM teasers t WHERE t.page_article_id = a.id),"
        " (SELECT count(*) FROM article_authors aa WHERE aa.article_id = a.id),"
        " (SELECT count(*) FROM revisions r WHERE r.article_id = a.id)"
        " FROM articles a ORDER BY a.url"
    )
    assert again.rows(whole) == reference.rows(whole)
    assert len(again.rows(whole)) == len(ARTICLES)
    pages = "SELECT count(*) FROM captures WHERE feed_page_url IS NULL"  # not load-more answers
    assert again.rows(pages) == [(len(ARTICLES),)]


# -- robots.txt ---------------------------------------------------------------------------------


def test_robots_txt_answering_503_means_fetch_nothing_and_exit_75(site_server, tmp_path):
    db = tmp_path / "a.db"
    site_server.overrides["/robots.txt"] = (503, {"Content-Type": "text/plain"}, b"")
    run = rsarchive_crawl(
        site_server, db, "article", "-a", urls(site_server, "seed", "two-authors"),
        settings={"RETRY_TIMES": "1"},
    )  # fmt: skip
    assert run.returncode == 75
    # Retried once, as any 503, then nothing else was asked of the site.
    assert site_server.requests == ["/robots.txt", "/robots.txt"]
    reason, line = run.stderr.splitlines()
    assert "robots.txt unavailable, nothing fetched" in reason and "answered HTTP 503" in reason
    summary = json.loads(line)
    assert (summary["status"], summary["finish_reason"], summary["exit_code"]) == (
        "failed",
        "robots_unavailable",
        75,
    )
    assert run.rows("SELECT count(*) FROM articles") == [(0,)]


def test_robots_txt_that_cannot_be_reached_exits_75(tmp_path):
    db = tmp_path / "a.db"
    unreachable = SiteServer(site=None, url="http://127.0.0.1:9")  # type: ignore[arg-type]
    run = rsarchive_crawl(unreachable, db, "article", "-a", "url=/2021/05/19/x/")
    assert run.returncode == 75
    assert "could not be fetched" in run.stderr


def test_robots_txt_answering_404_allows_everything(site_server, tmp_path):
    db = tmp_path / "a.db"
    # The body of a 404 is not a robots.txt, whatever it says.
    site_server.overrides["/robots.txt"] = (404, {}, b"User-agent: *\nDisallow: /\n")
    run = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed"))
    assert (run.returncode, run.stderr) == (0, "")
    assert site_server.requests[:2] == ["/robots.txt", path_of(site_server, "seed")]
    assert article_requests(site_server) == [path_of(site_server, "seed")]


# -- Retry-After --------------------------------------------------------------------------------


def test_a_503_with_retry_after_is_retried_no_sooner_than_asked(site_server, tmp_path):
    db = tmp_path / "a.db"
    path = path_of(site_server, "seed")
    site_server.queued[path] = [(503, {"Retry-After": "1"}, b"busy")]
    run = rsarchive_crawl(
        site_server, db, "article", "-a", urls(site_server, "seed"), settings={"RETRY_TIMES": "2"}
    )
    assert (run.returncode, run.stderr) == (0, "")
    times = [t for t, p in site_server.log if p == path]
    assert len(times) == 2
    assert times[1] - times[0] >= 1.0
    assert summary_of(log_files(db)[-1])["stats"]["rsarchive/retry_after_waits"] == 1


def test_a_retry_after_beyond_the_cap_gives_the_request_up_as_failed(site_server, tmp_path):
    db = tmp_path / "a.db"
    path = path_of(site_server, "seed")
    site_server.overrides[path] = (429, {"Retry-After": "3600"}, b"slow down")
    run = rsarchive_crawl(
        site_server, db, "article", "-a", urls(site_server, "seed"),
        settings={"RETRY_TIMES": "2", "RSARCHIVE_RETRY_AFTER_MAX": "60"},
    )  # fmt: skip
    assert run.returncode == 1
    assert [p for p in site_server.requests if p == path] == [path]
    stats = json.loads(run.stderr.splitlines()[-1])["stats"]
    assert stats["rsarchive/retry_after_too_long"] == 1
    assert stats["rsarchive/fetch_failed"] == 1


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (b"120", 120.0),
        (b" 0 ", 0.0),
        (b"Wed, 25 Nov 2026 14:00:30 GMT", 30.0),
        (b"Wed, 25 Nov 2026 13:59:00 GMT", 0.0),  # in the past: at once
        (b"soon", None),
        (b"-5", None),
        (None, None),
    ],
)
def test_retry_after_header_values(header, seconds):
    now = 1795615200.0  # 2026-11-25T14:00:00Z
    assert retry_after_seconds(header, now=now) == seconds


def article_requests(site_server) -> list[str]:
    """The pages requested, less robots.txt and the load-more feed (requests of its own)."""
    return [p for p in site_server.requests if p != "/robots.txt" and not p.startswith("/res/")]


def test_jobdir_resumes_an_interrupted_run_without_fetching_a_page_twice(site_server, tmp_path):
    db = tmp_path / "a.db"
    settings = {"CONCURRENT_REQUESTS": "1", "JOBDIR": str(tmp_path / "job")}
    gate = Gate(site_server, *ARTICLES[1:])  # held until the SIGTERM is taken
    proc = subprocess.Popen(
        command(site_server, db, "article", "-a", urls(site_server, *ARTICLES), settings=settings),
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: count(db, "SELECT count(*) FROM captures") >= 1, "the first page")
    wait_for(lambda: gate.waiting == 1, "the second page to be asked for")
    stderr = stop(proc, db, gate)
    assert proc.returncode == 3, stderr
    done = set(article_requests(site_server))
    assert 1 <= len(done) < len(ARTICLES)

    site_server.requests.clear()
    again = rsarchive_crawl(
        site_server, db, "article", "-a", urls(site_server, *ARTICLES), settings=settings
    )
    assert again.returncode == 0, again.stderr
    assert "Resuming crawl" in log_text(db)
    pages = article_requests(site_server)
    assert sorted(pages) == sorted({path_of(site_server, c) for c in ARTICLES} - done)
    assert again.rows("SELECT count(*) FROM articles") == [(len(ARTICLES),)]
