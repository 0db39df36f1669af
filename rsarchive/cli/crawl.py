"""`rsarchive crawl`: run a spider from cron: a lock, a log file per run, a summary, an exit code.

The lock is checked before Scrapy is even imported, so a second run exits at once.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import logging
import os
import stat
import sys
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from rsarchive.cli import (
    EXIT_CONFIG,
    EXIT_DB,
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_TRY_LATER,
    EXIT_USAGE,
    CommandError,
    add_db_argument,
    database_url,
)
from rsarchive.config import SettingError

EPILOG = """\
exit codes: 0 ok; 1 finished with failures (fetch errors, dropped or unstored pages);
3 stopped early (SIGTERM/SIGINT, CLOSESPIDER_TIMEOUT, memory limit); 64 usage;
74 database I/O; 75 try later (another run holds the lock, robots.txt unavailable);
78 configuration or schema problem.

Silent when it exits 0. Every run writes DIR/<UTC time>-<spider>.log, whose last line is the
run's one-line JSON summary (the crawl_runs row); on failure that line also goes to stderr.
"""

#: Scrapy stats copied into the summary besides every ``rsarchive/*`` one.
SUMMARY_STATS = (
    "downloader/request_count",
    "downloader/response_count",
    "item_scraped_count",
    "item_dropped_count",
    "retry/count",
    "robotstxt/forbidden",
    "log_count/ERROR",
    "log_count/WARNING",
    "elapsed_time_seconds",
)
_HIDDEN_STATS = ("rsarchive/pid", "rsarchive/run_id")


def register(sub: argparse._SubParsersAction) -> None:
    crawl = sub.add_parser(
        "crawl",
        help="run a spider for cron: lock, log file per run, JSON summary, exit code",
        description="Run a spider (article, feed, sitemap, wayback) in this process with the "
        "project settings, for cron and systemd: one run at a time per archive (a lock file beside "
        "the database), one log file per run, a one-line JSON summary, a meaningful exit code.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    crawl.add_argument("spider", help="the spider to run (see `scrapy list`)")
    crawl.add_argument(
        "-a",
        dest="spider_args",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a spider argument, as for `scrapy crawl` (repeatable)",
    )
    crawl.add_argument(
        "-s",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Scrapy or RSARCHIVE_* setting, as for `scrapy crawl` (repeatable)",
    )
    add_db_argument(crawl)
    crawl.add_argument(
        "--frontier",
        metavar="REDIS_URL",
        help="share one request queue with other workers (redis://HOST:6379/0; default: "
        "$RSARCHIVE_FRONTIER_URL); the lock is then this worker's ($RSARCHIVE_WORKER, else the "
        "host name)",
    )
    crawl.add_argument(
        "--log-dir",
        metavar="DIR",
        help="where each run's log file goes (default: $RSARCHIVE_LOG_DIR, else logs/ beside "
        "the SQLite file)",
    )
    crawl.add_argument("-v", "--verbose", action="store_true", help="also write the log to stderr")
    crawl.set_defaults(func=cmd_crawl)


@dataclass
class Plan:
    """Where a run writes: resolved before anything is written or Scrapy is imported."""

    spider: str
    spider_args: dict[str, str]
    overrides: dict[str, str]
    database_url: str
    log_dir: Path
    lock_path: Path


def cmd_crawl(args: argparse.Namespace) -> int:
    plan = _plan(args)
    lock_fd = _lock(plan)
    try:
        return _run(plan, verbose=args.verbose)
    finally:
        os.close(lock_fd)  # releases the lock; the file stays (unlinking it would race)


# -- before the lock: arguments, paths ----------------------------------------------------------


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, val = value.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"{option} {value!r}: expected NAME=VALUE", EXIT_USAGE)
        out[name.strip()] = val
    return out


def _plan(args: argparse.Namespace) -> Plan:
    spider_args = _pairs(args.spider_args, "-a")
    overrides = _pairs(args.settings, "-s")
    # The project settings module reads the RSARCHIVE_* environment variables (as strings).
    project = importlib.import_module("rsarchive.settings")
    db = database_url(
        args.db or overrides.get("RSARCHIVE_DATABASE_URL") or project.RSARCHIVE_DATABASE_URL
    )
    overrides["RSARCHIVE_DATABASE_URL"] = db
    db_file = _sqlite_file(db)
    if db_file is not None:
        _refuse_unusable(db_file)
    log_dir_value = args.log_dir or overrides.get("RSARCHIVE_LOG_DIR") or project.RSARCHIVE_LOG_DIR
    if log_dir_value:
        log_dir = Path(log_dir_value).expanduser().resolve()
    elif db_file is not None:
        log_dir = db_file.parent / "logs"
    else:
        raise CommandError(
            "set --log-dir (or RSARCHIVE_LOG_DIR): the database is not a SQLite file to put "
            "the logs beside",
            EXIT_USAGE,
        )
    overrides["RSARCHIVE_LOG_DIR"] = str(log_dir)
    lock_path = Path(f"{db_file}.lock") if db_file is not None else log_dir / "crawl.lock"
    if args.frontier:
        overrides["RSARCHIVE_FRONTIER_URL"] = args.frontier
    if overrides.get("RSARCHIVE_FRONTIER_URL", project.RSARCHIVE_FRONTIER_URL):
        # Several workers share the run: the lock keeps one run per worker name.
        worker = overrides.get("RSARCHIVE_WORKER") or project.RSARCHIVE_WORKER
        lock_path = lock_path.with_name(f"{lock_path.name}.{_lock_name(worker)}")
    return Plan(args.spider, spider_args, overrides, db, log_dir, lock_path)


def _lock_name(worker: str) -> str:
    """A worker name fit for a file name (default: this host's name)."""
    import socket

    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in worker or socket.gethostname())
    return name.strip(".") or "worker"


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL, absolute; None for another database or memory.

    Parsed by hand: importing SQLAlchemy would double the time a locked-out run takes.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] != "sqlite":
        return None
    database = unquote(rest.partition("?")[0])[1:]  # sqlite:///rel.db, sqlite:////abs.db
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def _refuse_unusable(path: Path) -> None:
    """Refuse, before a lock or log file is written, a SQLite path that is no file for an
    archive (a device such as /dev/null, a directory, a pipe: 74) or another program's database
    (78; ``rsarchive db upgrade`` refuses it the same way). Damaged files and old schemas are
    the archive's to report, once the run is logged."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return  # a new archive
    except OSError as exc:
        raise CommandError(f"cannot open the archive {path}: {exc.strerror}", EXIT_DB) from None
    if not stat.S_ISREG(mode):
        raise CommandError(f"cannot open the archive {path}: not a regular file", EXIT_DB)
    tables = _sqlite_tables(path)
    if tables and not {"articles", "alembic_version"} & tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise CommandError(
            f"{path} is not an rsarchive archive (another program's database, with the tables "
            f"{shown}): give an archive, a new file or an empty database",
            EXIT_CONFIG,
        )


def _sqlite_tables(path: Path) -> set[str]:
    """The tables of a SQLite file, read without changing it; empty when it cannot be read."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return set()
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error:  # not a database, locked, damaged: the run reports it
        return set()
    finally:
        conn.close()
    return {name for (name,) in rows if not name.startswith("sqlite_")}


def _lock(plan: Plan) -> int:
    """Take the archive's crawl lock (flock, released when the process ends) or exit 75."""
    path = plan.lock_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CommandError(f"cannot open the lock file {path}: {exc.strerror}", EXIT_DB) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
        os.close(fd)
        who = f"pid {holder[0]}" if holder else "another process"
        since = f", {holder[1]} since {holder[2]}" if len(holder) >= 3 else ""
        raise CommandError(
            f"another crawl of this archive is running ({who}{since}; lock {path}); "
            "try again later",
            EXIT_TRY_LATER,
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {plan.spider} {_now()}\n".encode(), 0)
    return fd


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the run ------------------------------------------------------------------------------------


def _run(plan: Plan, *, verbose: bool) -> int:
    from scrapy.spiderloader import get_spider_loader

    from rsarchive.outcome import human_summary, pages_done

    settings = project_settings(plan.overrides)
    names = sorted(get_spider_loader(settings).list())
    if plan.spider not in names:
        raise CommandError(
            f"no spider {plan.spider!r}: choose one of {', '.join(names)}", EXIT_USAGE
        )
    log_file = _new_log_file(plan.log_dir, plan.spider)
    settings.set("LOG_FILE", str(log_file), priority="cmdline")
    settings.set("LOG_FILE_APPEND", False, priority="cmdline")
    # On a terminal (never under cron), a progress bar on stderr; -v shows the log lines there.
    if not verbose and sys.stderr.isatty():
        settings.set("RSARCHIVE_PROGRESS_BAR", True, priority="cmdline")

    outcome = run_spider(settings, plan.spider, plan.spider_args, log_file, verbose=verbose)
    summary = _summary(plan, outcome, log_file)
    line = json.dumps(summary, ensure_ascii=False, sort_keys=False)
    _close_log_handlers(log_file)
    with log_file.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    code = summary["exit_code"]
    if code != EXIT_OK:
        print(f"rsarchive crawl {plan.spider}: {_why(summary, outcome)}; log: {log_file}",
              file=sys.stderr)  # fmt: skip
        if pages_done(outcome.stats):  # not for a run that never reached a page
            print(human_summary(outcome.stats), file=sys.stderr)
        print(line, file=sys.stderr)
    return code


def _new_log_file(log_dir: Path, spider: str) -> Path:
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for n in range(1000):
            path = log_dir / f"{stamp}-{spider}{f'.{n}' if n else ''}.log"
            try:
                path.open("x").close()  # claim the name: runs in the same second get .1, .2
            except FileExistsError:
                continue
            return path
    except OSError as exc:
        raise CommandError(f"cannot write logs in {log_dir}: {exc.strerror}", EXIT_CONFIG) from exc
    raise CommandError(f"cannot find a free log file name in {log_dir}", EXIT_CONFIG)


@dataclass
class Outcome:
    """How an in-process run ended."""

    stats: dict[str, Any]
    reason: str | None
    error: str | None  # the crawl could not start: why

    def exit_code(self) -> int:
        from rsarchive.outcome import exit_code

        return EXIT_CONFIG if self.error else exit_code(self.reason, self.stats)


def project_settings(overrides: dict[str, Any]) -> Any:
    """The project's Scrapy settings, with ``overrides`` on top (as ``-s`` gives them)."""
    from scrapy.settings import Settings

    # scrapy.cfg is not looked for: cron may start us anywhere (even in /).
    settings = Settings()
    settings.setmodule("rsarchive.settings", priority="project")
    settings.setdict(overrides, priority="cmdline")
    return settings


def run_spider(
    settings: Any,
    spider: str,
    spider_args: dict[str, str],
    log_file: Path | None = None,
    *,
    verbose: bool = False,
) -> Outcome:
    """Run one spider in this process (``rsarchive crawl`` and ``rsarchive demo``).

    Never raises for a crawl that cannot start (a bad setting or component): ``error`` says why.
    """
    from scrapy.crawler import CrawlerProcess

    errors: list[str] = []
    logger = logging.getLogger("rsarchive.cli.crawl")
    try:
        process = CrawlerProcess(settings)
        if verbose:
            _echo_to_stderr(settings)
        crawler = process.create_crawler(spider)
        deferred = process.crawl(crawler, **spider_args)
    except Exception as exc:  # a bad setting or component: say so, the log has the traceback
        if log_file is not None:
            with log_file.open("a", encoding="utf-8") as out:  # logging may not be set up yet
                out.write(f"the crawl could not start\n{traceback.format_exc()}")
        return Outcome({}, None, _error_line(exc))

    def start_failed(failure: Any) -> None:
        errors.append(_error_line(failure.value))
        if isinstance(failure.value, SettingError):  # the message says it all
            logger.error("the crawl could not start: %s", failure.value)
        else:
            logger.error("the crawl could not start", exc_info=failure.value)

    deferred.addErrback(start_failed)
    process.start()
    try:
        stats = dict(crawler.stats.get_stats())
    except (AttributeError, RuntimeError):  # stats never set up: it failed before that
        stats = {}
    return Outcome(stats, stats.get("finish_reason"), errors[0] if errors else None)


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, SettingError):
        return f"configuration error: {exc}"
    return f"{exc.__class__.__name__}: {exc}"


def _echo_to_stderr(settings: Any) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(settings.get("LOG_FORMAT"), datefmt=settings.get("LOG_DATEFORMAT"))
    )
    handler.setLevel(settings.get("LOG_LEVEL"))
    logging.getLogger().addHandler(handler)


def _close_log_handlers(log_file: Path) -> None:
    """Detach the run's log file handler, so the summary is its last line."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == log_file:
            root.removeHandler(handler)
            handler.close()


def _summary(plan: Plan, outcome: Outcome, log_file: Path) -> dict[str, Any]:
    from rsarchive.outcome import run_status

    stats = outcome.stats
    reason = outcome.reason
    code = outcome.exit_code()
    run_id = stats.get("rsarchive/run_id")
    row = _run_row(plan.database_url, run_id, reason, code, stats) if run_id else None
    if row is not None:
        summary = {
            "run_id": row["id"],
            "spider": row["spider"],
            "args": row["args"],
            "started_at": row["started_at"],
            "finished_at": row["finished_at"],
            "status": row["status"],
            "finish_reason": row["finish_reason"],
            "exit_code": row["exit_code"] if row["exit_code"] is not None else code,
            "pid": row["pid"],
        }
        if row["status"] == "running":  # its row could not be closed (a full disk)
            summary.update(status=run_status(reason), finish_reason=reason, exit_code=code)
        stats = row["stats"] or stats
    else:  # no row: the database could not be opened, or the crawl never started
        summary = {
            "run_id": None,
            "spider": plan.spider,
            "args": plan.spider_args,
            "started_at": _iso(stats.get("start_time")),
            "finished_at": _iso(stats.get("finish_time")) or _now(),
            "status": run_status(reason) if not outcome.error else "failed",
            "finish_reason": reason or ("start_failed" if outcome.error else None),
            "exit_code": code,
            "pid": os.getpid(),
        }
    summary["stats"] = {
        key: stats[key]
        for key in sorted(stats)
        if (key.startswith("rsarchive/") and key not in _HIDDEN_STATS) or key in SUMMARY_STATS
    }
    summary["log_file"] = str(log_file)
    return summary


def _run_row(
    url: str, run_id: int, reason: str | None, code: int, stats: dict[str, Any]
) -> dict[str, Any] | None:
    from sqlalchemy.exc import SQLAlchemyError

    from rsarchive.archive import Archive

    logger = logging.getLogger("rsarchive.cli.crawl")
    try:
        with Archive(url) as archive:
            if reason is None:
                # Killed past the graceful stop (a second SIGTERM): the run's row was never closed.
                archive.close_stale_run(run_id, finish_reason="killed", exit_code=code, stats=stats)
            return archive.get_run(run_id)
    except SQLAlchemyError as exc:
        logger.error("cannot read run %s back from the archive: %s", run_id, exc)
        return None


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _why(summary: dict[str, Any], outcome: Outcome) -> str:
    from rsarchive.outcome import DROPPED_PREFIX, FAILURE_STATS, failures

    code = summary["exit_code"]
    stats = summary["stats"]
    run = f"run {summary['run_id']}" if summary["run_id"] else "the run"
    prefix = f"{run}: " if summary["run_id"] else ""
    if outcome.error:
        return f"the crawl could not start: {outcome.error} (exit {code})"
    detail = {
        EXIT_USAGE: ("usage error", stats.get("rsarchive/usage_error")),
        EXIT_DB: ("cannot write to the archive", stats.get("rsarchive/storage_error"))
        if stats.get("rsarchive/storage_error")
        else ("cannot open the archive", stats.get("rsarchive/database_error")),
        EXIT_TRY_LATER: (
            "robots.txt unavailable, nothing fetched",
            stats.get("rsarchive/robots_unavailable"),
        ),
        EXIT_CONFIG: ("schema problem", stats.get("rsarchive/schema_error"))
        if stats.get("rsarchive/schema_error")
        else ("configuration error", stats.get("rsarchive/config_error")),
    }.get(code)
    if detail and detail[1]:
        return f"{prefix}{detail[0]}: {detail[1]} (exit {code})"
    if code == EXIT_STOPPED:
        return f"{run} stopped early ({summary['finish_reason']}) (exit {code})"
    if code == EXIT_FAILURES:
        count = failures(outcome.stats or stats)
        parts = [
            f"{k.removeprefix('rsarchive/')}: {v}"
            for k, v in stats.items()
            if k.startswith((*FAILURE_STATS, DROPPED_PREFIX))
        ]
        noun = "failure" if count == 1 else "failures"
        if stats.get("rsarchive/store_error"):
            parts.append(f"first: {stats['rsarchive/store_error']}")
        ended = "finished"
        if summary["finish_reason"] != "finished":  # e.g. closespider_errorcount
            ended = f"stopped ({summary['finish_reason']})"
        return f"{run} {ended} with {count} {noun} ({', '.join(parts)}) (exit {code})"
    return f"{run} ended {summary['finish_reason']} (exit {code})"
