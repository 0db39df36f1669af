"""What a finished crawl amounts to: its ``crawl_runs`` status, exit code and human summary.

The exit codes are the contract of docs/architecture.md §5.

Pure functions of the close reason and the crawl stats, shared by the store pipeline (which
writes them into the run's row) and ``rsarchive crawl`` (which exits with the code). Scrapy
itself exits 0 even when every request failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rsarchive.exitcodes import (
    EXIT_CONFIG,
    EXIT_DB,
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_TRY_LATER,
    EXIT_USAGE,
)
from rsarchive.progress import duration

#: Close reasons of a run cut short: a signal, a time limit, the memory limit.
STOPPED_REASONS = frozenset(
    {
        "shutdown",  # SIGTERM / SIGINT (Scrapy's graceful stop)
        "cancelled",
        "closespider_timeout",
        "closespider_timeout_no_item",
        "memusage_exceeded",
    }
)
#: Close reasons of a run that stopped at a limit it was given on purpose: as good as finished.
LIMIT_REASONS = frozenset({"closespider_itemcount", "closespider_pagecount"})

#: Close reasons (or ``rsarchive/<reason>`` stats) with an exit code of their own, first first.
REASON_EXIT_CODES = {
    "usage_error": EXIT_USAGE,
    "database_error": EXIT_DB,
    # The archive stopped taking writes during the run (a full disk, an I/O error).
    "storage_error": EXIT_DB,
    "schema_error": EXIT_CONFIG,
    # A setting the spider cannot use (``rsarchive/config_error`` names it).
    "config_error": EXIT_CONFIG,
    # Scrapy's reason when the spider's start() raised: the run could not begin.
    "start_error": EXIT_CONFIG,
    "robots_unavailable": EXIT_TRY_LATER,
    # A worker of a shared frontier (rsarchive.frontier) whose Redis stopped answering.
    "frontier_unavailable": EXIT_TRY_LATER,
}

#: The close reason of a run stopped by a write the archive could not take (a full disk).
STORAGE_ERROR = "storage_error"

#: Stats that count a page the run did not archive.
FAILURE_STATS = (
    "rsarchive/fetch_failed",
    "rsarchive/store_failed",
    "rsarchive/start_url_offsite",
    # A bug while processing a page (the pipeline's or a spider callback's): recorded, retried.
    "rsarchive/item_error",
    "rsarchive/spider_error",
)
DROPPED_PREFIX = "rsarchive/dropped/"
#: 404/410 answers for articles the archive holds: recorded (``removed_at``), not failures.
GONE_ARCHIVED = "rsarchive/gone_archived"


def run_status(reason: str | None) -> str:
    """The ``crawl_runs.status`` for a close reason."""
    if reason in ("finished", *LIMIT_REASONS):
        return "finished"
    if reason is None or reason in STOPPED_REASONS:
        return "interrupted"
    return "failed"


def failures(stats: Mapping[str, Any]) -> int:
    """Pages the run meant to archive and did not: fetch errors, drops, store errors.

    A 404 or 410 for an article already in the archive is not one: the site answered for good,
    and the archive recorded it (``removed_at``). A 404 for a URL never archived is.
    """
    count = sum(int(stats.get(key) or 0) for key in FAILURE_STATS)
    dropped = sum(int(v or 0) for k, v in stats.items() if k.startswith(DROPPED_PREFIX))
    return count + max(0, dropped - int(stats.get(GONE_ARCHIVED) or 0))


def exit_code(reason: str | None, stats: Mapping[str, Any]) -> int:
    """The exit code of ``rsarchive crawl`` for a run that closed with ``reason``.

    ``reason`` None: the run never closed (killed, or the crawl could not start).
    """
    for name, code in REASON_EXIT_CODES.items():
        if reason == name or stats.get(f"rsarchive/{name}"):
            return code
    if reason is None or reason in STOPPED_REASONS:
        return EXIT_STOPPED
    if reason not in ("finished", *LIMIT_REASONS) or failures(stats):
        return EXIT_FAILURES
    return EXIT_OK


def human_summary(stats: Mapping[str, Any], elapsed: float | None = None) -> str:
    """A run in one line for people, beside the JSON summary, e.g. ``12 pages: 3 new articles,
    1 changed, 8 unchanged, 41 teasers (7 new), 1 failed (http_404) — 14 s``."""

    def n(key: str) -> int:
        return int(stats.get(f"rsarchive/{key}") or 0)

    failed = failures(stats)
    pages = pages_done(stats)
    parts = [f"{n('articles_new')} new article{'s' * (n('articles_new') != 1)}"]
    parts += [f"{n('articles_changed')} changed"]
    if n("articles_updated"):
        parts.append(f"{n('articles_updated')} updated")
    parts.append(f"{n('articles_unchanged')} unchanged")
    if n("not_modified"):
        parts.append(f"{n('not_modified')} not modified")
    if n("articles_removed"):
        parts.append(f"{n('articles_removed')} marked removed")
    parts.append(f"{n('teasers_seen')} teasers ({n('teasers_new')} new)")
    if failed:
        reasons = sorted(
            {
                k[len(DROPPED_PREFIX) :]
                for k, v in stats.items()
                if k.startswith(DROPPED_PREFIX) and v
            }
            | {k.split("/", 1)[1] for k in FAILURE_STATS if stats.get(k)}
        )
        parts.append(f"{failed} failed ({', '.join(reasons)})")
    seconds = elapsed if elapsed is not None else stats.get("elapsed_time_seconds")
    took = f" — {duration(float(seconds))}" if seconds is not None else ""
    return f"{pages} page{'s' * (pages != 1)}: {', '.join(parts)}{took}"


def pages_done(stats: Mapping[str, Any]) -> int:
    """Pages the run is through with: stored, not modified (304) or failed."""
    done = int(stats.get("rsarchive/pages_stored") or 0) + int(
        stats.get("rsarchive/not_modified") or 0
    )
    return done + failures(stats)
