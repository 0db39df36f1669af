"""`rsarchive db compact`: make an archive smaller after the fact, losing nothing.

A crawl compresses each page cheaply (zstd level 3 with the dictionary of the day) because its
CPU per page matters; offline the archive can afford more. Compacting

- compresses every capture again at a high zstd level (``COMPACT_LEVEL``), pages with the
  archive's newest dictionary (which has seen more of the site than the one they were stored
  with), load-more answers alone; a body is rewritten only when it gets smaller, and ``sha256``
  and ``size`` (of the body as received) never change;
- merges the full-text index into one segment (FTS5 ``optimize``; SQLite);
- rewrites the SQLite file without its free pages (``VACUUM``), at the page size of a new archive
  when nothing else has the file open (an older archive's 4 KiB pages become 2 KiB ones).

Safe beside readers, and it refuses to run while a crawl writes to the archive (a ``running``
crawl run whose process lives): its long write transactions would hold that crawl up. Captures
are rewritten in short transactions, so an interrupted compact leaves a whole archive.

Each compact is a ``crawl_runs`` row (spider ``compact``; its stats say how far it got, with
which dictionary and level), so the next one starts after the captures it did, unless a newer
dictionary or a higher level asks for all of them again (or ``everything``).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from . import models as m
from .codec import Dictionaries, MissingCodec, capture_body, zstandard
from .engine import PAGE_SIZE, READ_ONLY, sqlite_file
from .models import utc_now_iso
from .runs import pid_alive
from .schema import check_schema

logger = logging.getLogger(__name__)

#: zstd level of a compacted capture: about 7 ms a page (level 3: 0.06 ms) for ~25% fewer bytes
#: than a crawl stores.
COMPACT_LEVEL = 19
_CHUNK = 100  # captures per write transaction
_SWITCH_WAIT_MS = 1000
#: The ``crawl_runs.spider`` of a compact.
RUN_NAME = "compact"  # how long to wait for readers before leaving the page size as it is


class CrawlRunning(RuntimeError):
    """A crawl is writing to the archive (one line for the user: try again later)."""


@dataclass
class CompactResult:
    run_id: int | None = None  # its crawl_runs row
    captures: int = 0  # captures looked at
    done_before: int = 0  # captures an earlier compact did (same dictionary, level as high)
    recompressed: int = 0  # of which rewritten smaller
    body_bytes_before: int = 0  # stored (compressed) bytes of the rewritten ones, before
    body_bytes_after: int = 0
    dictionary_id: int | None = None  # the dictionary pages were compressed with
    level: int = COMPACT_LEVEL
    file_bytes_before: int | None = None  # SQLite: the database file and its WAL
    file_bytes_after: int | None = None
    page_size_before: int | None = None
    page_size_after: int | None = None
    fts_optimized: bool = False
    vacuumed: bool = False


def running_crawls(engine: Engine) -> list[tuple[int, str, int]]:
    """(run id, spider, pid) of the runs marked ``running`` whose process lives (SQLite: the
    runs of a file come from this machine)."""
    runs = m.crawl_runs
    with engine.execution_options(**READ_ONLY).connect() as conn:
        rows = conn.execute(
            select(runs.c.id, runs.c.spider, runs.c.pid).where(runs.c.status == "running")
        ).all()
    return [(r.id, r.spider, r.pid) for r in rows if r.pid is not None and pid_alive(r.pid)]


def compact(
    engine: Engine,
    *,
    level: int = COMPACT_LEVEL,
    everything: bool = False,
) -> CompactResult:
    """Compact the archive behind ``engine`` (see the module); what was done.

    Raises ``CrawlRunning`` (SQLite, a crawl is writing), ``SchemaError``, ``MissingCodec``
    (zstandard is not installed) and SQLAlchemy's errors (a lock held past the busy timeout).
    ``everything``: compress every capture again, also those an earlier compact did.
    """
    if zstandard is None:
        raise MissingCodec("compacting needs the zstandard package")
    check_schema(engine)
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        busy = running_crawls(engine)
        if busy:
            run_id, spider, pid = busy[0]
            raise CrawlRunning(
                f"a crawl is writing to the archive (run {run_id}, {spider}, pid {pid}): "
                "compact it when no crawl runs"
            )
    path = sqlite_file(engine.url) if sqlite else None
    result = CompactResult(level=level, file_bytes_before=_file_bytes(path))
    with engine.execution_options(**READ_ONLY).connect() as conn:
        result.dictionary_id = conn.scalar(select(func.max(m.capture_dictionaries.c.id)))
    after = 0 if everything else _done_before(engine, result)
    result.run_id = _start_run(engine, level, everything)
    status, last = "failed", after
    try:
        last = _recompress(engine, result, after)
        if sqlite:
            result.page_size_before = _pragma(engine, "page_size")
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO articles_fts(articles_fts) VALUES ('optimize')")
            result.fts_optimized = True
            _vacuum(engine, result)
            result.page_size_after = _pragma(engine, "page_size")
            result.file_bytes_after = _file_bytes(path)
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        _finish_run(engine, result, status, last)
    return result


def _done_before(engine: Engine, result: CompactResult) -> int:
    """The last capture id the newest finished compact did, if it used this dictionary and at
    least this level (0: start from the first); counts them in ``result.done_before``."""
    runs, c = m.crawl_runs, m.captures
    with engine.execution_options(**READ_ONLY).connect() as conn:
        stats = conn.scalar(
            select(runs.c.stats)
            .where(runs.c.spider == RUN_NAME, runs.c.status == "finished")
            .order_by(runs.c.id.desc())
            .limit(1)
        )
        done = json.loads(stats) if stats else {}
        if done.get("dictionary_id") != result.dictionary_id or done.get("level", 0) < result.level:
            return 0
        after = int(done.get("last_capture_id") or 0)
        result.done_before = conn.scalar(select(func.count()).where(c.c.id <= after)) or 0
    return after


def _start_run(engine: Engine, level: int, everything: bool) -> int:
    with engine.begin() as conn:
        return conn.execute(
            insert(m.crawl_runs).values(
                spider=RUN_NAME,
                args=json.dumps({"level": level, "everything": everything}),
                started_at=utc_now_iso(),
                status="running",
                pid=os.getpid(),
            )
        ).inserted_primary_key[0]


def _finish_run(engine: Engine, result: CompactResult, status: str, last: int) -> None:
    stats = {
        "captures": result.captures,
        "recompressed": result.recompressed,
        "body_bytes_before": result.body_bytes_before,
        "body_bytes_after": result.body_bytes_after,
        "file_bytes_before": result.file_bytes_before,
        "file_bytes_after": result.file_bytes_after,
        "dictionary_id": result.dictionary_id,
        "level": result.level,
        "last_capture_id": last,
    }
    # Best effort: a run left "running" by a dead process is marked killed by the next crawl.
    with suppress(SQLAlchemyError), engine.begin() as conn:
        conn.execute(
            update(m.crawl_runs)
            .where(m.crawl_runs.c.id == result.run_id)
            .values(
                finished_at=utc_now_iso(),
                status=status,
                finish_reason=status,
                exit_code=0 if status == "finished" else None,
                stats=json.dumps(stats, sort_keys=True),
            )
        )


def _recompress(engine: Engine, result: CompactResult, after: int) -> int:
    """Compress again every capture after the id ``after``; the last capture id done."""
    c = m.captures
    dictionaries = Dictionaries()
    reader = engine.execution_options(**READ_ONLY)
    newest = result.dictionary_id
    with reader.connect() as conn:
        alone = zstandard.ZstdCompressor(level=result.level)
        pages = alone
        if newest is not None:
            dictionary = dictionaries.get(conn, newest)
            pages = zstandard.ZstdCompressor(level=result.level, dict_data=dictionary)
    columns = (c.c.id, c.c.body, c.c.compression, c.c.dictionary_id, c.c.feed_page_url)
    last = after
    while True:
        # Read and compress without the write lock; write the smaller ones in a short
        # transaction (the first page of a crawl never waits long for it).
        with reader.connect() as conn:
            rows = conn.execute(
                select(*columns).where(c.c.id > last).order_by(c.c.id).limit(_CHUNK)
            ).all()
            smaller: list[dict[str, Any]] = []
            for row in rows:
                body = capture_body(conn, row, dictionaries)
                is_page = row.feed_page_url is None and newest is not None
                data = (pages if is_page else alone).compress(body)
                if len(data) < len(row.body):
                    smaller.append(
                        {"id": row.id, "body": data, "dictionary_id": newest if is_page else None}
                    )
                    result.body_bytes_before += len(row.body)
                    result.body_bytes_after += len(data)
        if not rows:
            return last
        if smaller:
            with engine.begin() as conn:
                for values in smaller:
                    conn.execute(
                        update(c)
                        .where(c.c.id == values["id"])
                        .values(
                            body=values["body"],
                            compression="zstd",
                            dictionary_id=values["dictionary_id"],
                        )
                    )
        result.captures += len(rows)
        result.recompressed += len(smaller)
        last = rows[-1].id


def _vacuum(engine: Engine, result: CompactResult) -> None:
    """VACUUM, then fold the WAL back into the file. An archive with another page size than a
    new one gets it, when nothing else has the file open (WAL mode cannot change page size)."""
    # Leaving WAL needs the file to this connection alone: the pool's others are closed first.
    engine.dispose()
    raw = engine.raw_connection()  # autocommit (engine.py): VACUUM runs outside a transaction
    try:
        cursor = raw.cursor()
        switched = False
        if result.page_size_before != PAGE_SIZE:
            cursor.execute(f"PRAGMA busy_timeout={_SWITCH_WAIT_MS}")
            try:
                mode = cursor.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
                switched = mode == "delete"
            except sqlite3.OperationalError as exc:  # readers have it open
                logger.info("page size left at %s: %s", result.page_size_before, exc)
            cursor.execute("PRAGMA busy_timeout=30000")
            if switched:
                cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
        cursor.execute("VACUUM")
        if switched:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        cursor.close()
    finally:
        raw.close()
    result.vacuumed = True


def _pragma(engine: Engine, name: str) -> int:
    with engine.execution_options(**READ_ONLY).connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()


def _file_bytes(path: Path | None) -> int | None:
    if path is None:
        return None
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
