"""Which database errors mean the archive takes no more writes at all (a full disk, an I/O
error, a read-only or damaged file, a lost server), as against one page's own failure."""

from __future__ import annotations

import sqlite3

# SQLite primary result codes (the low byte of an extended code such as SQLITE_IOERR_WRITE).
_SQLITE_UNWRITABLE = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PERM,
    }
)
# PostgreSQL SQLSTATE classes and codes: insufficient resources (53: disk full, out of memory),
# system errors (58: I/O), a read-only transaction (25006, a standby), an administrator's
# shutdown (57P01-57P03).
_PG_UNWRITABLE_CLASSES = ("53", "58")
_PG_UNWRITABLE = frozenset({"25006", "57P01", "57P02", "57P03"})


def describe(exc: BaseException) -> str:
    """One line for a database error: the driver's message and SQLite's code name, such as
    ``database is locked (SQLITE_BUSY)``."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [orig.__class__.__name__])[0]
    name = getattr(orig, "sqlite_errorname", "")
    return f"{text} ({name})" if name else text


def unwritable(exc: BaseException) -> str | None:
    """Why no later write can succeed either (one line), or None for an error of this write
    only (a constraint, a lock held past the busy timeout, a bug)."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return describe(exc) if code & 0xFF in _SQLITE_UNWRITABLE else None
    state = getattr(orig, "sqlstate", None)
    if state and (state[:2] in _PG_UNWRITABLE_CLASSES or state in _PG_UNWRITABLE):
        return describe(exc)
    if getattr(exc, "connection_invalidated", False):
        return f"the database connection was lost: {describe(exc)}"
    return None
