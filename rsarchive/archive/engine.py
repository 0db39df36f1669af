"""Engine set-up (SQLite pragmas, real transactions with BEGIN IMMEDIATE) and schema creation."""

from __future__ import annotations

import sqlite3
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from .models import FTS_DDL, metadata
from .views import create_view_ddl

#: Execution options for connections that only read: on SQLite they open a plain (deferred)
#: BEGIN, so a reader never takes the write lock or waits for a running crawl.
READ_ONLY: dict[str, Any] = {"rsarchive_read_only": True}

#: The databases the archive runs on (SQLAlchemy backend names); its upserts and views are
#: written for these two.
SUPPORTED_DIALECTS = ("sqlite", "postgresql")

# busy_timeout first: switching to WAL needs a lock another process may hold for a moment.
#: The page size of a new SQLite archive.
PAGE_SIZE = 2048
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",
    # Issue 14: a new file's page size (an existing file keeps its own). Captures (~3 KiB with
    # their dictionary) and articles (~5 KiB) fill 2 KiB pages with far less left unused than
    # 4 KiB ones, where one capture takes a page and an article spills a half-empty one.
    f"PRAGMA page_size={PAGE_SIZE}",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
# A reader leaves the file's journal mode alone (WAL or not is the writer's choice).
_SQLITE_READ_ONLY_PRAGMAS = (
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA query_only=ON",
)


def sqlite_file(url: str | URL) -> Path | None:
    """The file behind a SQLite URL (a path or a ``file:`` URI), else None (another database,
    or an in-memory one)."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        return None
    database = sa_url.database or ""
    if database.startswith("file:"):
        if sa_url.query.get("mode") == "memory" or "mode=memory" in database:
            return None
        # A URI filename: percent-encoded, maybe with its own query string.
        database = unquote(database[len("file:") :].split("?", 1)[0])
        if database.startswith("//localhost/"):
            database = database[len("//localhost") :]
    if not database or database == ":memory:":
        return None
    return Path(database).expanduser()


def as_database_url(value: str) -> str:
    """A database setting as a SQLAlchemy URL: a URL as given, a plain path (``rsarchive.db``,
    ``~/a.db``) as that SQLite file, as ``--db`` takes it."""
    if "://" in value:
        return value
    return sqlite_url(Path(value).expanduser().resolve())


def sqlite_url(path: str | Path, *, read_only: bool = False) -> str:
    """The SQLAlchemy URL of a SQLite file; ``read_only``: opened with ``mode=ro``."""
    absolute = str(Path(path).expanduser().absolute())
    if read_only:
        # A URI filename: SQLite decodes %XX in it, so quote the path (keeps '%', '?', '#').
        ro = URL.create(
            "sqlite", database=f"file:{quote(absolute)}", query={"mode": "ro", "uri": "true"}
        )
        return ro.render_as_string()
    # make_url decodes %XX in the database part: quote it so "c%20d.db" stays that file.
    return f"sqlite:///{quote(absolute)}"


def _sqlite_on_connect(
    pragmas: tuple[str, ...], dbapi_connection: Any, connection_record: ConnectionPoolEntry
) -> None:
    # Take BEGIN away from the sqlite3 driver (its legacy mode begins late, only before DML, and
    # never for SELECT or DDL); the "begin" listeners below emit it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in pragmas:
            if pragma == _WAL:
                _set_wal(cursor)
            else:
                cursor.execute(pragma)
    finally:
        cursor.close()


_WAL = "PRAGMA journal_mode=WAL"
#: How long a new connection keeps asking to switch a file to WAL (as long as busy_timeout).
_WAL_WAIT = 30.0


def _set_wal(cursor: Any) -> None:
    """Switch the file to WAL. The switch needs the file to itself for a moment and SQLite's
    busy handler does not wait for it: two processes opening one new archive at once saw
    "database is locked" at once (one crawl then stored nothing). Ask again for a while."""
    deadline = time.monotonic() + _WAL_WAIT
    delay = 0.01
    while True:
        try:
            cursor.execute(_WAL)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _sqlite_on_begin_read_only(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _sqlite_on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a writer that began as a reader and upgrades later
    # can fail with SQLITE_BUSY at once, whatever busy_timeout says.
    if conn.get_execution_options().get("rsarchive_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` (a SQLite or PostgreSQL SQLAlchemy URL), set up for the archive.

    Raises ``ValueError`` for another database, before connecting to it.

    ``read_only``: for commands that only read. A SQLite file is opened with ``mode=ro`` and
    ``query_only``; nothing is created, the journal mode is left as it is, and transactions
    are a plain ``BEGIN`` (never the write lock). Other databases are opened as they are.

    SQLite: the file's directory is created, every connection gets WAL, ``synchronous=NORMAL``,
    foreign keys and a 30 s busy timeout, and transactions are real (``BEGIN IMMEDIATE`` for
    writers, plain ``BEGIN`` for connections with the ``READ_ONLY`` execution options).
    Connections may be used from any thread (one thread at a time each); a private in-memory
    database (``sqlite://``) is one connection shared by every thread, so its users must take
    turns: fine for tests and a single writer, not for readers running beside a writer.
    """
    sa_url = make_url(url)
    backend = sa_url.get_backend_name()
    if backend not in SUPPORTED_DIALECTS:
        # Before connecting: another database would get PostgreSQL's upsert syntax, or none.
        raise ValueError(f"the archive supports SQLite and PostgreSQL databases, not {backend}")
    is_sqlite = backend == "sqlite"
    if is_sqlite and read_only:
        path = sqlite_file(sa_url)
        if path is not None:
            sa_url = make_url(sqlite_url(path, read_only=True)).set(drivername=sa_url.drivername)
        kwargs["connect_args"] = {"check_same_thread": False, **kwargs.get("connect_args", {})}
        if path is None:
            kwargs.setdefault("poolclass", StaticPool)
        engine = create_engine(sa_url, **kwargs)
        event.listen(engine, "connect", partial(_sqlite_on_connect, _SQLITE_READ_ONLY_PRAGMAS))
        event.listen(engine, "begin", _sqlite_on_begin_read_only)
        return engine
    if is_sqlite:
        database = sa_url.database
        private_memory = not database or database == ":memory:"
        in_memory = private_memory or "mode=memory" in database
        if not in_memory and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The archive may be written from a thread other than the one that opened it (the store
        # pipeline's writer thread): a connection must not be tied to the thread that made it.
        # File databases get SQLAlchemy's QueuePool; a private in-memory database lives in one
        # connection, so every thread must get that one (one at a time), not a new empty one.
        kwargs["connect_args"] = {"check_same_thread": False, **kwargs.get("connect_args", {})}
        if private_memory:
            kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(sa_url, **kwargs)
    if is_sqlite:
        pragmas = _SQLITE_PRAGMAS
        if "timeout" in sa_url.query:  # the URL's own busy timeout (?timeout=SECONDS) wins
            pragmas = tuple(p for p in pragmas if not p.startswith("PRAGMA busy_timeout"))
        event.listen(engine, "connect", partial(_sqlite_on_connect, pragmas))
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def create_schema(engine: Engine | Connection) -> None:
    """Create every missing table, index and view, and on SQLite the full-text index. Idempotent.

    Given a connection, runs in its transaction (``rsarchive.archive.schema`` creates a fresh
    archive and stamps its migration version in one).
    """
    if isinstance(engine, Connection):
        _create_schema(engine)
        return
    with engine.begin() as conn:
        _create_schema(conn)


def _create_schema(conn: Connection) -> None:
    metadata.create_all(conn)
    if conn.dialect.name in ("sqlite", "postgresql"):
        for ddl in create_view_ddl(conn.dialect.name):
            conn.exec_driver_sql(ddl)
    if conn.dialect.name != "sqlite":
        return
    had_fts = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'articles_fts'"
    ).first()
    for ddl in FTS_DDL:
        conn.exec_driver_sql(ddl)
    if not had_fts:
        # The articles table may predate the index (an older file, a restore): fill it.
        conn.exec_driver_sql("INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')")
