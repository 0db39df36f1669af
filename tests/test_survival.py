"""What the archive survives in its process and storage: kills at any point, signals, overlapping
runs, a locked, full, read-only or corrupt database, hostile paths and numbers; each run as a
user runs it (real `rsarchive` subprocesses against the fixture site on 127.0.0.1)."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import re
import resource
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import rsarchive, scrapy_crawl
from test_cron import (
    ARTICLES,
    RSARCHIVE,
    Gate,
    clean_env,
    command,
    count,
    log_files,
    log_text,
    path_of,
    rsarchive_crawl,
    run_row,
    stop,
    urls,
    wait_for,
)

from rsarchive.cli import build_parser, main

HUGE = "99999999999999999999"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A small real archive (the demo's crawl of the fixture site)."""
    db = tmp_path_factory.mktemp("archive") / "A.db"
    proc = rsarchive("demo", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    return db


# -- numbers ------------------------------------------------------------------------------------


def _integer_options() -> list[tuple[list[str], str]]:
    """(the sub-command words and its required arguments, option) for every option taking an
    integer, of every command (nested ones too, such as `db ...`)."""
    found: list[tuple[list[str], str]] = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        required = [
            "x" for a in parser._actions if not a.option_strings and a.nargs is None and a.dest
        ]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*words, name])
            elif action.option_strings and callable(action.type):
                try:
                    is_int = isinstance(action.type("5"), int)
                except (argparse.ArgumentTypeError, ValueError, TypeError):
                    is_int = False
                if is_int:
                    found.append(([*words, *required], action.option_strings[0]))

    walk(build_parser(), [])
    return found


def test_every_integer_option_is_checked():
    options = _integer_options()
    names = {(words[0], option) for words, option in options}
    assert {("search", "--limit"), ("list", "--offset"), ("stats", "--runs")} <= names
    assert ("diff", "--context") in names


@pytest.mark.parametrize(("words", "option"), _integer_options())
@pytest.mark.parametrize("value", [HUGE, "-1", "1e3", ""])
def test_an_integer_option_out_of_range_is_a_usage_error(words, option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, option, value, "--db", "/nonexistent/never.db"])
    assert exit_.value.code == 64
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


def test_search_with_a_huge_limit_exits_64_in_one_line(tmp_path):
    proc = rsarchive("search", "Blinken", "--limit", HUGE, "--db", str(tmp_path / "a.db"))
    assert proc.returncode == 64
    assert proc.stderr.splitlines()[-1] == (
        f"rsarchive search: error: argument --limit: too large (at most 2147483647): {HUGE}"
    )
    assert "Traceback" not in proc.stderr


# -- what --db and --output may name ------------------------------------------------------------


def foreign_database(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
        conn.execute("INSERT INTO moz_places (url) VALUES ('https://example.org/')")
    conn.close()
    return path


def test_crawl_refuses_another_programs_database_before_any_request(site_server, tmp_path):
    db = foreign_database(tmp_path / "places.sqlite")
    before = digest(db)
    run = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed"))
    assert run.returncode == 78
    assert run.stderr == (
        f"rsarchive crawl: {db} is not an rsarchive archive (another program's database, with "
        "the tables moz_places): give an archive, a new file or an empty database\n"
    )
    assert site_server.requests == []
    # Not a byte changed (not even its journal mode), and nothing written beside it.
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["places.sqlite"]


def test_scrapy_crawl_adds_no_table_to_another_programs_database(site_server, tmp_path):
    db = foreign_database(tmp_path / "places.sqlite")
    result = scrapy_crawl("article", db, site_server.url, "-a", urls(site_server, "seed"))
    assert "is not an rsarchive archive: it holds another program's tables (1, such as " \
        "moz_places)" in result.log  # fmt: skip
    assert result.rows("SELECT name FROM sqlite_master WHERE type = 'table'") == [("moz_places",)]
    assert [p for p in site_server.requests if p != "/robots.txt"] == []


def test_crawl_into_dev_null_is_refused_before_anything_is_written(site_server):
    before = set(os.listdir("/dev"))
    proc = subprocess.run(
        [str(RSARCHIVE), "crawl", "article", "-a", urls(site_server, "seed"), "--db", "/dev/null",
         "-s", f"RSARCHIVE_SITE_URL={site_server.url}"],
        capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")},
    )  # fmt: skip
    assert proc.returncode == 74
    assert proc.stderr == "rsarchive crawl: cannot open the archive /dev/null: not a regular file\n"
    assert set(os.listdir("/dev")) == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert site_server.requests == []


def test_export_never_writes_over_the_archive_or_another_database(archive, tmp_path):
    before = digest(archive)
    other = tmp_path / "other.db"
    other.write_bytes(archive.read_bytes())
    for target, message in [
        (archive, f"refusing to write over the archive {archive}"),
        (Path(f"{archive}.lock"), f"refusing to write over the archive {archive}"),
        (other, f"refusing to write over {other}: it is a SQLite database"),
        (tmp_path, f"cannot write {tmp_path}: it is a directory"),
    ]:
        proc = rsarchive("export", "--db", str(archive), "--output", str(target))
        assert (proc.returncode, proc.stderr) == (73, f"rsarchive export: {message}\n")
    assert digest(archive) == before
    assert digest(other) == before
    assert [p.name for p in tmp_path.iterdir()] == ["other.db"]  # no .part left either


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_export_writes_into_a_device_never_replacing_it(archive):
    full = rsarchive("export", "--db", str(archive), "--output", "/dev/full")
    assert (full.returncode, full.stderr) == (
        73,
        "rsarchive export: cannot write /dev/full: No space left on device\n",
    )
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    null = rsarchive("export", "--db", str(archive), "--output", "/dev/null")
    assert null.returncode == 0 and null.stderr.startswith("exported 10 articles to /dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_export_into_a_named_pipe_streams_through_it(archive, tmp_path):
    fifo = tmp_path / "articles.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    proc = rsarchive("export", "--db", str(archive), "--output", str(fifo))
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(received[0].decode().splitlines()) == 10
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# -- kills --------------------------------------------------------------------------------------


WHOLE = (
    "SELECT a.url, a.content_hash,"
    " (SELECT count(*) FROM teasers t WHERE t.page_article_id = a.id),"
    " (SELECT count(*) FROM article_authors aa WHERE aa.article_id = a.id),"
    " (SELECT count(*) FROM revisions r WHERE r.article_id = a.id)"
    " FROM articles a ORDER BY a.url"
)


def start_crawl(server, db: Path, *cases: str, settings: dict | None = None, env=None):
    return subprocess.Popen(
        command(server, db, "article", "-a", urls(server, *cases), "-a", "feed_pages=0",
                settings={"CONCURRENT_REQUESTS": "1", **(settings or {})}),
        env=env or clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def held_crawl(server, db: Path) -> tuple[subprocess.Popen, Gate]:
    """A crawl of ARTICLES that has stored the first page and waits for the second, which the
    gate holds (the caller opens it)."""
    gate = Gate(server, *ARTICLES[1:])
    proc = start_crawl(server, db, *ARTICLES)
    try:
        wait_for(lambda: count(db, "SELECT count(*) FROM captures") == 1, "the first page")
        wait_for(lambda: gate.waiting == 1, "the second page to be asked for")
    except BaseException:
        gate.open()
        proc.kill()
        proc.communicate(timeout=60)
        raise
    return proc, gate


def test_a_run_killed_with_sigkill_is_marked_killed_by_the_next_run(site_server, tmp_path):
    db = tmp_path / "a.db"
    proc, gate = held_crawl(site_server, db)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        gate.open()
    assert proc.returncode == -signal.SIGKILL
    (killed,) = [row[0] for row in sqlite3.connect(db).execute("SELECT id FROM crawl_runs")]
    assert run_row(db, killed)["status"] == "running"  # nobody could close it

    again = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, *ARTICLES))
    assert (again.returncode, again.stderr) == (0, "")
    row = run_row(db, killed)
    assert (row["status"], row["finish_reason"], row["exit_code"]) == (
        "interrupted",
        "killed",
        None,
    )
    # Its end is when it stored its last page.
    assert (
        row["finished_at"]
        == again.rows("SELECT max(fetched_at) FROM captures WHERE run_id = ?", killed)[0][0]
    )
    log = log_files(db)[-1].read_text(encoding="utf-8")
    assert f"run {killed} (pid {proc.pid}, started {row['started_at']}) died without closing: " \
        "marked killed" in log  # fmt: skip
    assert again.rows("PRAGMA integrity_check") == [("ok",)]
    assert len(again.rows(WHOLE)) == len(ARTICLES)


def test_a_live_run_is_never_marked_killed(site_server, tmp_path):
    db = tmp_path / "a.db"
    first, gate = held_crawl(site_server, db)
    try:
        # `scrapy crawl` takes no lock: it runs beside the first, and must leave its row alone.
        second = scrapy_crawl("article", db, site_server.url, "-a", urls(site_server, "seed"))
        assert second.returncode == 0, second.log
        assert second.rows("SELECT status FROM crawl_runs ORDER BY id") == [
            ("running",),
            ("finished",),
        ]
    finally:
        stop(first, db, gate)
    assert first.returncode == 3


# -- storage: full, read-only, damaged ----------------------------------------------------------


def many_pages(server, n: int) -> list[str]:
    """``n`` distinct article pages on the server (the seed page under other URLs and post
    ids); their paths."""
    seed = path_of(server, "seed")

    def page(path: str) -> tuple[int, dict[str, str], bytes]:
        number = int(path.rstrip("/").rsplit("-", 1)[1])
        status, headers, body = server.site.respond(seed, origin=server.url)
        body = body.replace(b"blinken-lavrov-iceland", f"page-{number}".encode())
        body = body.replace(b"2652879530", str(3_000_000_000 + number).encode())
        headers.pop("ETag", None)
        return status, headers, body

    paths = [f"/2024/01/01/page-{i}/" for i in range(n)]
    for path in paths:
        server.handlers[path] = page
    return paths


def url_file(server, paths: list[str], where: Path) -> str:
    where.write_text("".join(f"{server.url}{p}\n" for p in paths), encoding="utf-8")
    return f"url_file={where}"


def file_size_limit(limit: int):
    def apply() -> None:  # in the child, before exec: as `ulimit -f` would
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def whole_pages(db: Path) -> None:
    """Integrity, and no page stored in part: every article has its three teasers (the seed
    page's) and a revision with its capture, every capture of a page its article."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        partial = conn.execute(
            "SELECT a.url FROM articles a WHERE"
            " (SELECT count(*) FROM teasers t WHERE t.page_article_id = a.id) != 3"
            " OR NOT EXISTS (SELECT 1 FROM revisions r JOIN captures c ON c.id = r.capture_id"
            "                WHERE r.article_id = a.id)"
        ).fetchall()
        assert partial == []
        # Every page's capture is some revision's (these pages never change).
        orphans = conn.execute(
            "SELECT c.url FROM captures c WHERE c.feed_page_url IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM revisions r WHERE r.capture_id = c.id)"
        ).fetchall()
        assert orphans == []
    conn.close()


class _PgError(Exception):
    """What psycopg raises: the SQLSTATE in ``sqlstate``."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _sqlite_error(message: str, code: int, name: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode, exc.sqlite_errorname = code, name
    return exc


@pytest.mark.parametrize(
    ("orig", "stops"),
    [
        (_sqlite_error("database or disk is full", 13, "SQLITE_FULL"), True),
        (_sqlite_error("disk I/O error", 778, "SQLITE_IOERR_WRITE"), True),
        (_sqlite_error("attempt to write a readonly database", 8, "SQLITE_READONLY"), True),
        (_sqlite_error("database disk image is malformed", 11, "SQLITE_CORRUPT"), True),
        (_sqlite_error("database is locked", 5, "SQLITE_BUSY"), False),
        (_sqlite_error("no such table: teasers", 1, "SQLITE_ERROR"), False),
        (_PgError("could not extend file: No space left on device", "53100"), True),
        (_PgError("cannot execute INSERT in a read-only transaction", "25006"), True),
        (_PgError("duplicate key value violates unique constraint", "23505"), False),
    ],
)
def test_which_database_errors_stop_the_run(orig, stops):
    from sqlalchemy.exc import OperationalError

    from rsarchive.archive.errors import unwritable

    why = unwritable(OperationalError("INSERT ...", {}, orig))
    assert (why is not None) == stops
    if stops:
        assert why.startswith(str(orig))


def test_a_full_disk_stops_the_run_at_once_with_74_and_the_next_run_fetches_the_rest(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    paths = many_pages(site_server, 60)
    args = ("-a", url_file(site_server, paths, tmp_path / "urls.txt"), "-a", "feed_pages=0")
    proc = subprocess.run(
        command(site_server, db, "article", *args), env=clean_env(), capture_output=True,
        text=True, timeout=120, check=False, preexec_fn=file_size_limit(600_000),
    )  # fmt: skip
    assert proc.returncode == 74, proc.stderr
    # The reason, the human summary of the run, the JSON summary.
    reason, human, line = proc.stderr.splitlines()
    assert re.match(r"\d+ pages?: .* failed", human), human
    assert reason.startswith("rsarchive crawl article: run 1: cannot write to the archive: ")
    assert "(SQLITE_" in reason and reason.endswith(".log")
    summary = json.loads(line)
    assert (summary["status"], summary["finish_reason"], summary["exit_code"]) == (
        "failed",
        "storage_error",
        74,
    )
    stats = summary["stats"]
    stored = stats["rsarchive/pages_stored"]
    assert 1 <= stored < 60
    # It stopped: far fewer than 60 pages asked for (those in flight at most), one error line.
    asked = [p for p in site_server.requests if p in paths]
    assert len(asked) <= stored + stats["rsarchive/store_failed"] + 16
    assert len(asked) < 60
    log = log_files(db)[0].read_text(encoding="utf-8")
    assert log.count(" ERROR: ") == 1 and "Traceback" not in log
    assert json.loads(log.splitlines()[-1]) == summary  # the log ends with the summary too
    whole_pages(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (stored,)
        # The log is folded into the database after the refused write, so the run's row could
        # still be closed (a truly full disk may refuse even that: the summary says so).
        assert conn.execute(
            "SELECT status, finish_reason, exit_code FROM crawl_runs"
        ).fetchall() == [("failed", "storage_error", 74)]
    conn.close()

    again = rsarchive_crawl(site_server, db, "article", *args)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.rows("SELECT count(*) FROM articles") == [(60,)]
    whole_pages(db)


# -- SIGKILL anywhere (T43) ---------------------------------------------------------------------

#: Where the store's fault hook (rsarchive/archive/faults.py) can kill the process: a run's row,
#: each statement of a page's transaction, and right after its commit.
KILL_POINTS = ("run", "lookup", "capture", "article", "teasers", "state", "commit")
KILLS, CHUNKS = 50, 5


def kill_plan(chunk: int) -> list[tuple[str, int]]:
    """This chunk's share of the 50 kills: (point, n) pairs, random but the same every time."""
    rng = random.Random(43)
    plan = [(rng.choice(KILL_POINTS), rng.randint(1, 2)) for _ in range(KILLS)]
    plan = [(point, 1 if point == "run" else n) for point, n in plan]
    per = KILLS // CHUNKS
    return plan[chunk * per : (chunk + 1) * per]


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_sigkill_at_any_point_leaves_every_page_whole_and_the_next_run_completes(
    site_server, tmp_path, chunk
):
    db = tmp_path / "a.db"
    plan = kill_plan(chunk)
    paths = many_pages(site_server, 2 * len(plan) + 2)
    for i, (point, n) in enumerate(plan):
        # 4 pages a run: 2 the run before may have stored, 2 new: every point is reached twice.
        args = ("-a", url_file(site_server, paths[2 * i : 2 * i + 4], tmp_path / "urls.txt"))
        proc = subprocess.run(
            command(site_server, db, "article", *args, "-a", "feed_pages=0"),
            env=clean_env(RSARCHIVE_FAULT_KILL_AFTER=f"{point}:{n}"),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == -signal.SIGKILL, (point, n, proc.stderr)
        whole_pages(db)
        with sqlite3.connect(db) as conn:
            running = conn.execute("SELECT count(*) FROM crawl_runs WHERE status = 'running'")
            assert running.fetchone() == (1,)  # its own; the run before it was marked killed
        conn.close()

    args = ("-a", url_file(site_server, paths, tmp_path / "urls.txt"), "-a", "feed_pages=0")
    final = rsarchive_crawl(site_server, db, "article", *args)
    assert (final.returncode, final.stderr) == (0, "")
    assert final.rows("SELECT count(*) FROM articles") == [(len(paths),)]
    whole_pages(db)
    assert final.rows("SELECT status, finish_reason, count(*) FROM crawl_runs GROUP BY 1, 2") == [
        ("finished", "finished", 1),
        ("interrupted", "killed", len(plan)),
    ]


# -- signals (T42) ------------------------------------------------------------------------------


def test_a_second_sigterm_kills_at_once_and_the_run_is_marked_killed_with_3(site_server, tmp_path):
    db = tmp_path / "a.db"
    proc, gate = held_crawl(site_server, db)
    try:
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "Received SIGTERM" in log_text(db), "the first SIGTERM to be taken")
        proc.send_signal(signal.SIGTERM)  # the page in flight is not waited for
        _, stderr = proc.communicate(timeout=60)
    finally:
        gate.open()
    assert proc.returncode == 3, stderr
    assert "Received SIGTERM twice, forcing unclean shutdown" in log_text(db)
    (row,) = sqlite3.connect(db).execute("SELECT status, finish_reason, exit_code FROM crawl_runs")
    assert row == ("interrupted", "killed", 3)
    assert stderr.splitlines()[0].endswith(".log") and "stopped early (killed)" in stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (1,)
    conn.close()


# -- overlapping runs (T44) ---------------------------------------------------------------------


def test_two_scrapy_crawls_of_the_same_pages_at_once_store_each_page_once(site_server, tmp_path):
    db = tmp_path / "a.db"
    paths = many_pages(site_server, 12)
    for path in paths:
        site_server.delays[path] = 0.05  # long enough for the two runs to overlap
    args = ["-a", url_file(site_server, paths, tmp_path / "urls.txt"), "-a", "feed_pages=0"]
    runs = [
        threading.Thread(
            target=lambda: results.append(scrapy_crawl("article", db, site_server.url, *args))
        )
        for _ in range(2)
    ]
    results: list = []
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=180)
    assert [r.returncode for r in results] == [0, 0]
    whole_pages(db)
    assert results[0].rows("SELECT count(*) FROM articles") == [(12,)]
    assert results[0].rows("SELECT count(*) FROM captures") == [(12,)]
    assert results[0].rows("SELECT status, count(*) FROM crawl_runs GROUP BY 1") == [
        ("finished", 2)
    ]


# -- an outside writer holding the lock (T45) ---------------------------------------------------


@contextmanager
def write_lock(db: Path):
    """Another program holding the archive's write lock (an open write transaction)."""
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def test_a_lock_held_past_the_busy_timeout_fails_the_page_clearly_and_loses_nothing(
    site_server, tmp_path
):
    db = tmp_path / "a.db"
    gate = Gate(site_server, *ARTICLES[1:])
    # A busy timeout of 1 s instead of 30, through the URL (sqlite:///...?timeout=SECONDS).
    proc = subprocess.Popen(
        command(site_server, f"sqlite:///{db}?timeout=1", "article",  # type: ignore[arg-type]
                "-a", urls(site_server, *ARTICLES), "-a", "feed_pages=0",
                settings={"CONCURRENT_REQUESTS": "1"}),
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: gate.waiting == 1, "the second page to be asked for")
        with write_lock(db):
            gate.open()
            wait_for(lambda: "could not store" in log_text(db), "a page to wait for the lock")
        _, stderr = proc.communicate(timeout=60)
    finally:
        gate.open()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    reason = stderr.splitlines()[0]
    assert "store_failed: " in reason
    assert "database is locked (SQLITE_BUSY)" in reason
    assert f"could not store {site_server.page_url(ARTICLES[1])}: database is locked" in log_text(
        db
    )
    assert "Traceback" not in log_text(db)
    # Not lost: the next run stores it.
    again = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, *ARTICLES))
    assert (again.returncode, again.stderr) == (0, "")
    assert again.rows("SELECT count(*) FROM articles") == [(len(ARTICLES),)]
    assert again.rows("PRAGMA integrity_check") == [("ok",)]


# -- read-only and damaged archives (T46) -------------------------------------------------------


def first_archive(site_server, db: Path) -> None:
    run = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "seed"))
    assert run.returncode == 0, run.stderr
    site_server.requests.clear()


@contextmanager
def immutable(path: Path):
    """The file made read-only for everyone, root too (chattr +i), for the block."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_archive_stops_the_run_before_any_page_with_74(site_server, tmp_path):
    db = tmp_path / "a.db"
    first_archive(site_server, db)
    before = digest(db)
    with immutable(db):
        run = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "two-authors"))
    assert run.returncode == 74, run.stderr
    reason = run.stderr.splitlines()[0]
    assert "cannot open the archive: attempt to write a readonly database" in reason
    assert [p for p in site_server.requests if p != "/robots.txt"] == []
    assert digest(db) == before


def test_a_damaged_archive_is_reported_in_one_line_and_db_check_finds_it(site_server, tmp_path):
    db = tmp_path / "a.db"
    first_archive(site_server, db)
    data = bytearray(db.read_bytes())
    page = 4096
    data[2 * page :] = b"\xa5" * (len(data) - 2 * page)  # every page after the second
    db.write_bytes(bytes(data))
    run = rsarchive_crawl(site_server, db, "article", "-a", urls(site_server, "two-authors"))
    assert run.returncode == 74, run.stderr
    assert "database disk image is malformed" in run.stderr.splitlines()[0]
    assert "Traceback" not in run.stderr
    assert [p for p in site_server.requests if p != "/robots.txt"] == []
    check = rsarchive("db", "check", "--db", str(db))
    assert check.returncode in (65, 74), check.stderr
    assert "malformed" in check.stdout + check.stderr


# -- run-bound limits (T49) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"CLOSESPIDER_TIMEOUT": "1"}, "closespider_timeout"),
        (
            {
                "MEMUSAGE_ENABLED": "1",
                "MEMUSAGE_LIMIT_MB": "1",
                "MEMUSAGE_CHECK_INTERVAL_SECONDS": "0.2",
            },
            "memusage_exceeded",
        ),
    ],
)
def test_a_run_bound_limit_stops_the_run_with_3_naming_it(site_server, tmp_path, settings, reason):
    db = tmp_path / "a.db"
    gate = Gate(site_server, *ARTICLES[1:])
    proc = start_crawl(site_server, db, *ARTICLES, settings=settings)
    try:
        wait_for(lambda: f"Closing spider ({reason})" in log_text(db), "the limit")
    finally:
        gate.open()  # the page in flight is finished, then the run stops
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    assert f"stopped early ({reason}) (exit 3)" in stderr.splitlines()[0]
    (row,) = sqlite3.connect(db).execute("SELECT status, finish_reason, exit_code FROM crawl_runs")
    assert row == ("interrupted", reason, 3)


# -- politeness under load (T52) ----------------------------------------------------------------


def test_politeness_holds_concurrency_and_delay_under_load(site_server, tmp_path):
    db = tmp_path / "a.db"
    paths = many_pages(site_server, 12)
    in_flight, most, starts = [0], [0], []
    lock = threading.Lock()
    page = site_server.handlers[paths[0]]

    def measured(path: str) -> tuple[int, dict[str, str], bytes]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            starts.append(time.monotonic())
        try:
            time.sleep(0.3)  # a slow site: a crawler that did not wait would pile up
            return page(path)
        finally:
            with lock:
                in_flight[0] -= 1

    for path in paths:
        site_server.handlers[path] = measured
    delay = 0.4
    run = rsarchive_crawl(
        site_server, db, "article", "-a", url_file(site_server, paths, tmp_path / "urls.txt"),
        "-a", "feed_pages=0",
        settings={"CONCURRENT_REQUESTS": "16", "CONCURRENT_REQUESTS_PER_DOMAIN": "2",
                  "DOWNLOAD_DELAY": str(delay)},
    )  # fmt: skip
    assert (run.returncode, run.stderr) == (0, "")
    assert len(starts) == 12
    assert most[0] <= 2  # never more at once than the setting allows, though 16 were allowed
    # Scrapy waits 0.5-1.5 x DOWNLOAD_DELAY between two requests to the site.
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.5 * delay - 0.05, gaps
    assert len(starts) / (starts[-1] - starts[0]) <= 1 / (0.5 * delay)


# -- logs (T51) ---------------------------------------------------------------------------------


def test_a_log_directory_that_cannot_be_made_exits_78_before_anything_runs(site_server, tmp_path):
    db = tmp_path / "a.db"
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log directory should go\n")
    run = rsarchive_crawl(
        site_server, db, "article", "-a", urls(site_server, "seed"),
        settings={"RSARCHIVE_LOG_DIR": str(blocker / "logs")},
    )  # fmt: skip
    assert run.returncode == 78
    assert run.stderr == (
        f"rsarchive crawl: cannot write logs in {blocker / 'logs'}: Not a directory\n"
    )
    assert site_server.requests == []
    assert not db.exists()
