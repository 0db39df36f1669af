"""Opening an archive to read it: the one probe every reading command uses, and what reading
can raise (each a line for the user; the command line maps each kind to its exit code).

The probe never creates or changes a database, and tells a missing file, an unreadable one and
a file that is not an archive apart.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from .engine import make_engine, sqlite_file

# Tables without which a database is not an rsarchive archive (newer schemas add more).
ARCHIVE_TABLES = (
    "articles",
    "authors",
    "article_authors",
    "tags",
    "article_tags",
    "teasers",
    "captures",
    "revisions",
    "crawl_runs",
)
FTS_TABLE = "articles_fts"


class ReadError(Exception):
    """A problem a user caused or can fix, reported as one line (the CLI maps kinds to codes)."""


class ArchiveMissing(ReadError):
    """The database file does not exist."""


class ArchiveUnreadable(ReadError):
    """The database exists but cannot be opened or read (permissions, I/O, locked)."""


class NotAnArchive(ReadError):
    """The database opens but is not an rsarchive archive."""


class EmptyDatabase(NotAnArchive):
    """The database opens but has no table at all (``db upgrade`` may create an archive)."""


class MissingDriver(ReadError):
    """The URL names a database whose driver is not installed (a configuration problem)."""


class BadQuery(ReadError):
    """A malformed full-text search query."""


class BadDate(ReadError, ValueError):
    """A date filter that is not YYYY, YYYY-MM, YYYY-MM-DD or ISO 8601."""


class NotFound(ReadError):
    """No archived article (or page) by that URL or id."""


def open_archive(url: str) -> Engine:
    """A read-only engine (``make_engine(url, read_only=True)``) on the archive at ``url``.

    The one probe every command that reads uses: never creates a file, a directory or a
    table, and never changes the file (not even its journal mode). Raises ``ArchiveMissing``
    (no such file), ``ArchiveUnreadable`` (cannot be opened or read), ``MissingDriver`` (no
    driver installed for the URL), ``EmptyDatabase`` (a database without any table) or
    ``NotAnArchive`` (another program's database, a text file). The schema version is not
    checked here: ``open_reader`` does that.
    """
    try:
        sa_url = make_url(url)
    except ArgumentError:
        raise ArchiveUnreadable(f"not a database URL: {url}") from None
    is_sqlite = sa_url.get_backend_name() == "sqlite"
    where = sa_url.render_as_string(hide_password=True)
    if is_sqlite:
        path = sqlite_file(sa_url)
        if path is None:
            raise NotAnArchive("an in-memory database is empty, not an archive")
        path = path.absolute()
        where = str(path)
        if not path.exists():
            raise ArchiveMissing(f"no archive database at {path}")
        if path.is_dir():
            raise ArchiveUnreadable(f"cannot open the archive database {path}: it is a directory")
    try:
        engine = make_engine(url, read_only=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise MissingDriver(f"cannot open {where}: {exc}") from None
    except ValueError as exc:  # a database the archive does not run on
        raise NotAnArchive(f"cannot open {where}: {exc}") from None
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            # ``teasers`` is a view since issue 14 (a table before): either counts.
            have = set(inspector.get_table_names()) | set(inspector.get_view_names())
    except DBAPIError as exc:
        engine.dispose()
        if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise NotAnArchive(f"{where} is not an rsarchive archive (not a SQLite file)") from None
        raise ArchiveUnreadable(f"cannot open the archive database {where}: {exc.orig}") from None
    kind = "SQLite database" if is_sqlite else "database"
    if not have:
        engine.dispose()
        raise EmptyDatabase(f"{where} is not an rsarchive archive (an empty {kind})")
    # The full-text index is SQLite's only (PostgreSQL archives have none).
    missing = [t for t in (*ARCHIVE_TABLES, *([FTS_TABLE] if is_sqlite else [])) if t not in have]
    if missing:
        engine.dispose()
        raise NotAnArchive(
            f"{where} is not an rsarchive archive (a {kind} without the {', '.join(missing)} "
            f"table{'s' if len(missing) > 1 else ''})"
        )
    return engine
