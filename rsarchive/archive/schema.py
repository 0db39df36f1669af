"""Schema versions: Alembic migrations run from inside the package, and the start-up check.

Every writer and reader of the archive calls ``prepare_schema`` (through ``Archive``) or
``check_schema``: a database older or newer than this code stops the program with a
``SchemaError`` naming the command that fixes it. The migration scripts live in
``rsarchive/archive/migrations/`` (no alembic.ini: the Alembic ``Config`` is built here).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect

from .engine import READ_ONLY, create_schema, sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Alembic logs a dozen INFO lines (plugin set-up, context) each time a crawl opens the archive:
# noise in every crawl log. `rsarchive db upgrade` says itself what it did; warnings still show.
logging.getLogger("alembic").setLevel(logging.WARNING)

#: The schema as issue 2 left it. Databases made before migrations existed have it, untagged.
BASELINE = "0001"

# A table every rsarchive schema has: present without alembic_version means "baseline".
_MARKER_TABLE = "articles"


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """For Alembic's autogenerate: the FTS5 index and its shadow tables are not in the models."""
    return not (type_ == "table" and name is not None and name.startswith("articles_fts"))


class SchemaError(Exception):
    """The database schema is not the one this code reads and writes (one line for the user)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration, built in code; ``connection`` is what ``env.py`` migrates."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The schema version this code reads and writes."""
    head = _scripts().get_current_head()
    assert head is not None, "no migration scripts"
    return head


def known_revisions() -> list[str]:
    """Every schema version this code knows, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def current_revision(conn: Connection) -> str | None:
    """The database's schema version: None for an empty database, ``BASELINE`` when untagged."""
    from alembic.migration import MigrationContext

    version = MigrationContext.configure(conn).get_current_revision()
    if version is None and inspect(conn).has_table(_MARKER_TABLE):
        return BASELINE
    return version


def db_argument(engine: Engine | Connection) -> str:
    """What to pass to ``--db`` for this database (a SQLite path, else the URL sans password)."""
    url = engine.engine.url if isinstance(engine, Connection) else engine.url
    path = sqlite_file(url)  # also the file behind a read-only engine's file: URI
    if path is not None:
        return str(path)
    return url.render_as_string(hide_password=True)


def schema_problem(conn: Connection) -> str | None:
    """Why this code cannot use the database's schema, or None when it can (or it is empty)."""
    current = current_revision(conn)
    head = head_revision()
    if current is None or current == head:
        return None
    if current in known_revisions():
        return (
            f"the archive schema is older than this rsarchive ({current} < {head}): "
            f"run `rsarchive db upgrade --db {db_argument(conn)}`"
        )
    return (
        f"the archive schema is newer than this rsarchive ({current} > {head}): upgrade rsarchive"
    )


def check_schema(engine: Engine | Connection) -> None:
    """Raise ``SchemaError`` unless the schema is this code's (an empty database passes)."""
    if isinstance(engine, Connection):
        problem = schema_problem(engine)
    else:
        # A plain BEGIN: checking never waits for the write lock a running crawl holds.
        with engine.execution_options(**READ_ONLY).connect() as conn:
            problem = schema_problem(conn)
    if problem:
        raise SchemaError(problem)


def prepare_schema(engine: Engine) -> None:
    """Create a fresh archive at the current version, or check an existing one's version.

    An existing archive is only read (no write lock). An empty one is created in one write
    transaction (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL) that looks again
    first: of two processes creating the same new database, one creates it and the other finds
    it made.
    """
    with engine.execution_options(**READ_ONLY).connect() as conn:
        empty = current_revision(conn) is None
        if empty:
            _refuse_foreign(conn)
    if empty:
        with engine.begin() as conn:
            _lock_schema(conn)
            if current_revision(conn) is None:
                create_schema(conn)
                _stamp(conn, head_revision())
                return
    check_schema(engine)


def _refuse_foreign(conn: Connection) -> None:
    """Raise ``SchemaError`` when a database without an archive holds tables: another
    program's, never to be written into (``rsarchive db upgrade`` refuses it the same way)."""
    tables = inspect(conn).get_table_names()
    if tables:
        raise SchemaError(
            f"{db_argument(conn)} is not an rsarchive archive: it holds another program's "
            f"tables ({len(tables)}, such as {min(tables)})"
        )


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the current version; ``(version before, version now)``.

    An empty database gets the current schema at once; one made before migrations existed is
    first tagged as the baseline. All in one transaction: a failed step leaves it as it was.
    """
    from alembic import command

    head = head_revision()
    with engine.begin() as conn:
        _lock_schema(conn)
        before = current_revision(conn)
        if before is None:
            create_schema(conn)
            _stamp(conn, head)
            return None, head
        if before not in known_revisions():
            raise SchemaError(
                f"the archive schema is newer than this rsarchive ({before} > {head}): "
                "upgrade rsarchive"
            )
        if before == BASELINE:
            _stamp(conn, BASELINE)  # untagged databases of issue-2 code
        command.upgrade(alembic_config(conn), "head")
        return before, current_revision(conn) or head


#: The PostgreSQL advisory lock key that serialises schema changes (any constant of our own).
_SCHEMA_LOCK = 0x72736172  # "rsar"


def _lock_schema(conn: Connection) -> None:
    """On PostgreSQL, wait for any other process changing the schema (workers starting
    together on a new database): its transaction does not block ours by itself."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")


def _stamp(conn: Connection, revision: str) -> None:
    from alembic import command

    command.stamp(alembic_config(conn), revision)
