"""`rsarchive db check`: is the archive whole? Integrity, full-text index, orphan rows, schema.

Everything is read on a read-only connection (``make_engine(url, read_only=True)``): a check
never takes the write lock, so it neither waits for a running crawl nor holds one up; only
FTS5's own index check needs a short write transaction of its own (see ``_fts_matches``).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Column, Connection, Engine, and_, func, inspect, select

from . import models as m
from .engine import READ_ONLY, sqlite_file
from .schema import schema_problem

# The SQLite objects create_schema makes besides the tables of the models.
_FTS_OBJECTS = {
    ("table", "articles_fts"),
    ("trigger", "articles_fts_ai"),
    ("trigger", "articles_fts_ad"),
    ("trigger", "articles_fts_au"),
}


def check_archive(engine: Engine) -> list[str]:
    """Every problem found, one line each (an empty list: all is well)."""
    problems: list[str] = []
    with engine.execution_options(**READ_ONLY).connect() as conn:
        problem = schema_problem(conn)
        if problem:
            problems.append(problem)
        if conn.dialect.name == "sqlite":
            problems += _sqlite_integrity(conn)
        problems += _orphans(conn)
        conn.rollback()
    if engine.dialect.name == "sqlite":
        problems += _fts(engine)
    return problems


def _sqlite_integrity(conn: Connection) -> list[str]:
    rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
    if rows == ["ok"]:
        return []
    return [f"PRAGMA integrity_check: {row}" for row in rows]


def _fts(engine: Engine) -> list[str]:
    with engine.execution_options(**READ_ONLY).connect() as conn:
        present = {
            (kind, name)
            for kind, name in conn.exec_driver_sql(
                "SELECT type, name FROM sqlite_master WHERE name LIKE 'articles_fts%'"
            )
        }
        conn.rollback()
    missing = sorted(name for kind, name in _FTS_OBJECTS - present)
    if ("table", "articles_fts") not in present:
        return [f"full-text index missing: {', '.join(missing)}"]
    problems = [f"full-text index trigger missing: {name}" for name in missing]
    path = sqlite_file(engine.url)
    if path is not None:
        problem = _fts_matches(path)
        if problem:
            problems.append(problem)
    return problems


#: Seconds the full-text index check waits for a writer (a crawl storing a page) to finish.
FTS_CHECK_BUSY_TIMEOUT = 30.0

# SQLite result codes that mean "could not run the check", not "the index is wrong".
_NOT_CHECKED = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_PERM,
}


def _fts_matches(path: Path) -> str | None:
    """FTS5's 'integrity-check' with rank 1: the index holds exactly what ``articles`` holds.

    It changes nothing, but it is an INSERT: SQLite runs it only in a write transaction, so
    not on a read-only connection (SQLite 3.44+ checks the index's own structure in
    ``PRAGMA integrity_check``, not against the content). A connection of its own (``mode=rw``:
    never creates the file, leaves its journal mode alone) runs it and rolls back; it waits for
    a crawl's page transaction to end and holds the write lock only while FTS5 checks.
    """
    uri = f"file:{quote(str(path.absolute()))}?mode=rw"
    try:
        with closing(
            sqlite3.connect(uri, uri=True, timeout=FTS_CHECK_BUSY_TIMEOUT, isolation_level=None)
        ) as conn:
            # IMMEDIATE: waits (busy timeout) for a crawl's page transaction to end; a
            # deferred BEGIN would fail at once when FTS5, having read, asks for the lock.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 1)"
                )
            finally:
                conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _NOT_CHECKED:
            return f"full-text index not checked ({exc}): FTS5 checks it in a write transaction"
        return (
            f"full-text index articles_fts does not match articles ({exc}); rebuild it: "
            "INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')"
        )
    return None


def _references() -> list[tuple[Column, Column]]:
    """(child column, parent column) of every foreign key of the models, and of the references
    kept without a REFERENCES clause (``captures.dictionary_id``: see migration 0007)."""
    out = [
        (fk.parent, fk.column) for table in m.metadata.sorted_tables for fk in table.foreign_keys
    ]
    out.append((m.captures.c.dictionary_id, m.capture_dictionaries.c.id))
    return out


def _orphans(conn: Connection) -> list[str]:
    """Rows whose reference names a row that does not exist (every FK of the models)."""
    have = set(inspect(conn).get_table_names())
    problems = []
    for child_col, parent_col in _references():
        table, parent = child_col.table, parent_col.table
        if table.name not in have or parent.name not in have:
            continue
        ref = parent.alias("ref")
        count = conn.scalar(
            select(func.count())
            .select_from(table.outerjoin(ref, ref.c[parent_col.name] == child_col))
            .where(and_(child_col.is_not(None), ref.c[parent_col.name].is_(None)))
        )
        if count:
            problems.append(
                f"orphan rows: {count} in {table.name}.{child_col.name} "
                f"point to no {parent.name} row"
            )
    return problems
