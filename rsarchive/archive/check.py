"""`rsarchive db check`: is the archive whole? Integrity, full-text index, orphan rows, schema."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, and_, func, inspect, select
from sqlalchemy.exc import DBAPIError

from . import models as m
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
    with engine.connect() as conn:
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
    with engine.connect() as conn:
        present = {
            (kind, name)
            for kind, name in conn.exec_driver_sql(
                "SELECT type, name FROM sqlite_master WHERE name LIKE 'articles_fts%'"
            )
        }
        missing = sorted(name for kind, name in _FTS_OBJECTS - present)
        if ("table", "articles_fts") not in present:
            return [f"full-text index missing: {', '.join(missing)}"]
        problems = [f"full-text index trigger missing: {name}" for name in missing]
        try:
            # With rank 1 (an external-content table), FTS5 also checks that the index holds
            # exactly what the articles table holds (SQLite's documented 'integrity-check').
            conn.exec_driver_sql(
                "INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 1)"
            )
        except DBAPIError as exc:
            problems.append(
                f"full-text index articles_fts does not match articles ({exc.orig}); rebuild it: "
                "INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')"
            )
        finally:
            conn.rollback()
    return problems


def _orphans(conn: Connection) -> list[str]:
    """Rows whose foreign key names a row that does not exist (every FK of the models)."""
    have = set(inspect(conn).get_table_names())
    problems = []
    for table in m.metadata.sorted_tables:
        if table.name not in have:
            continue
        for fk in table.foreign_keys:
            parent = fk.column.table
            if parent.name not in have:
                continue
            child_col = table.c[fk.parent.name]
            ref = parent.alias("ref")
            count = conn.scalar(
                select(func.count())
                .select_from(table.outerjoin(ref, ref.c[fk.column.name] == child_col))
                .where(and_(child_col.is_not(None), ref.c[fk.column.name].is_(None)))
            )
            if count:
                problems.append(
                    f"orphan rows: {count} in {table.name}.{child_col.name} "
                    f"point to no {parent.name} row"
                )
    return problems
