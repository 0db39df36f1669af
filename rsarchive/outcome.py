"""What a finished crawl amounts to: its ``crawl_runs`` status and its exit code (DESIGN.md §2).

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
}

#: The close reason of a run stopped by a write the archive could not take (a full disk).
STORAGE_ERROR = "storage_error"

#: Stats that count a page the run did not archive.
FAILURE_STATS = ("rsarchive/fetch_failed", "rsarchive/store_failed", "rsarchive/start_url_offsite")
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
