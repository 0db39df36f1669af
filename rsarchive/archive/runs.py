"""Runs that died without closing their ``crawl_runs`` row (SIGKILL, a power cut, the OOM
killer): found by their pid, and marked ``interrupted`` with the finish reason ``killed``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select, update

from . import models as m
from .engine import READ_ONLY

logger = logging.getLogger(__name__)

#: The finish reason of a run found dead (also of a run stopped by a second SIGTERM).
KILLED = "killed"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        # /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and parentheses.
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal answered, it lives
    return state not in ("Z", "X")


def close_dead_runs(engine: Engine, alive: Callable[[int], bool] = pid_alive) -> list[int]:
    """Mark every ``running`` run whose process is gone as killed; the ids marked.

    SQLite only: the runs of a SQLite file come from this machine, where a pid names one
    process (a PostgreSQL archive may be written from several). The run's end is the last page
    it stored (else its start); its exit code stays empty: the process never exited with one.
    """
    if engine.dialect.name != "sqlite":
        return []
    runs, captures = m.crawl_runs, m.captures
    with engine.execution_options(**READ_ONLY).connect() as conn:  # no write lock to look
        candidates = conn.execute(
            select(runs.c.id, runs.c.pid, runs.c.started_at).where(runs.c.status == "running")
        ).all()
    dead = [row for row in candidates if row.pid is not None and not alive(row.pid)]
    if not dead:
        return []
    last_page = (
        select(func.max(captures.c.fetched_at))
        .where(captures.c.run_id == runs.c.id)
        .scalar_subquery()
    )
    with engine.begin() as conn:
        for row in dead:
            conn.execute(
                update(runs)
                .where(runs.c.id == row.id, runs.c.status == "running")
                .values(
                    status="interrupted",
                    finish_reason=KILLED,
                    finished_at=func.coalesce(last_page, runs.c.started_at),
                )
            )
    for row in dead:
        logger.warning(
            "run %s (pid %s, started %s) died without closing: marked killed",
            row.id,
            row.pid,
            row.started_at,
        )
    return [row.id for row in dead]
