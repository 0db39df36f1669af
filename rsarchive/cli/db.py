"""`rsarchive db`: schema version (`current`), migrations (`upgrade`), integrity (`check`), and
a smaller archive (`compact`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import suppress
from functools import wraps

from rsarchive.cli import (
    EXIT_CONFIG,
    EXIT_DATAERR,
    EXIT_DB,
    EXIT_OK,
    EXIT_TRY_LATER,
    CommandError,
    add_db_argument,
    database_url,
    read_errors,
    whole_number,
)


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser(
        "db",
        help="archive maintenance: schema version, migrations, integrity check",
        description="Archive maintenance.",
    )
    actions = db.add_subparsers(dest="action", metavar="ACTION", parser_class=sub._parser_class)
    actions.required = True

    upgrade = actions.add_parser(
        "upgrade",
        help="migrate the archive to this rsarchive's schema (creates a new archive if empty)",
    )
    add_db_argument(upgrade)
    upgrade.set_defaults(func=cmd_upgrade)

    current = actions.add_parser(
        "current", aliases=["status"], help="show the archive's schema version"
    )
    add_db_argument(current)
    current.set_defaults(func=cmd_current)

    check = actions.add_parser(
        "check",
        help="PRAGMA integrity_check, the full-text index, orphan rows, the schema version",
        description="Check the archive: SQLite's integrity check, the full-text index against "
        "the articles table, rows pointing to rows that do not exist, and the schema version. "
        f"Prints each problem; exits 0 when all is well, {EXIT_DATAERR} otherwise.",
    )
    add_db_argument(check)
    check.set_defaults(func=cmd_check)

    compact = actions.add_parser(
        "compact",
        help="make the archive smaller: captures compressed again harder, FTS optimize, VACUUM",
        description="Compress every capture again at a high zstd level (pages with the newest "
        "capture dictionary), merge the full-text index and VACUUM the SQLite file; nothing "
        "stored changes but its size. Refuses to run while a crawl writes to the archive "
        f"(exit {EXIT_TRY_LATER}).",
    )
    add_db_argument(compact)
    compact.add_argument(
        "--level",
        type=_zstd_level,
        default=None,
        help="zstd level, 1-22 (default: 19, ~7 ms a page; 9 is ~25x faster for ~8%% more)",
    )
    compact.add_argument(
        "--all",
        action="store_true",
        help="also the captures an earlier compact did (by default it starts after them, "
        "unless a newer dictionary or a higher level asks for all)",
    )
    compact.set_defaults(func=cmd_compact)


def _zstd_level(value: str) -> int:
    level = whole_number(value)
    if not 1 <= level <= 22:
        raise argparse.ArgumentTypeError(f"a zstd level is 1 to 22, not {level}")
    return level


def existing_archive(value: str | None) -> str:
    """The URL for ``--db`` of a command that writes to an existing archive (``reparse``).

    Checked with the probe every reading command uses (``opening.open_archive``, read-only):
    a missing file is an error (74), not created; a file that is not an archive, or an empty
    database, is refused (78) before anything writes an archive schema into it.
    """
    from rsarchive.archive.opening import open_archive

    url = database_url(value)
    with read_errors():
        open_archive(url).dispose()
    return url


def _shown(url: str) -> str:
    """``url`` fit to print: the password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def _open(args: argparse.Namespace):
    """The archive ``--db`` names, read-only: the probe every reading command shares."""
    from rsarchive.archive.opening import open_archive

    with read_errors():
        return open_archive(database_url(args.db))


def _db_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A database error while a command runs: one line and exit 74, not a traceback."""

    @wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return func(args)
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise CommandError(f"archive database error: {reason}", EXIT_DB) from exc

    return wrapper


@_db_errors
def cmd_upgrade(args: argparse.Namespace) -> int:
    from rsarchive.archive import make_engine
    from rsarchive.archive.opening import ArchiveMissing, EmptyDatabase, open_archive
    from rsarchive.archive.schema import db_argument, upgrade

    url = database_url(args.db)
    # A new archive goes into a missing file or an empty database, never beside another
    # program's tables.
    with read_errors(), suppress(ArchiveMissing, EmptyDatabase):
        open_archive(url).dispose()
    try:
        engine = make_engine(url)
    except Exception as exc:  # unknown dialect, missing driver: one line, not a traceback
        raise CommandError(f"cannot open {_shown(url)}: {exc}", EXIT_CONFIG) from None
    try:
        before, after = upgrade(engine)
        where = db_argument(engine)
    finally:
        engine.dispose()
    if before is None:
        print(f"created a new archive at schema {after}: {where}")
    elif before == after:
        print(f"the archive is up to date (schema {after}): {where}")
    else:
        print(f"upgraded the archive from schema {before} to {after}: {where}")
    return EXIT_OK


@_db_errors
def cmd_current(args: argparse.Namespace) -> int:
    from rsarchive.archive.engine import READ_ONLY
    from rsarchive.archive.schema import current_revision, schema_problem

    engine = _open(args)
    try:
        with engine.execution_options(**READ_ONLY).connect() as conn:
            current = current_revision(conn)
            problem = schema_problem(conn)
    finally:
        engine.dispose()
    if problem:
        print(f"schema {current}: {problem}")
        return EXIT_CONFIG
    print(f"schema {current} (up to date)")
    return EXIT_OK


@_db_errors
def cmd_check(args: argparse.Namespace) -> int:
    from rsarchive.archive.check import check_archive
    from rsarchive.archive.schema import db_argument

    engine = _open(args)
    try:
        problems = check_archive(engine)
        where = db_argument(engine)
        # SQLite's integrity check and the FTS5 index exist on SQLite only.
        sqlite = engine.dialect.name == "sqlite"
    finally:
        engine.dispose()
    for problem in problems:
        print(f"PROBLEM {problem}")
    if problems:
        print(f"{where}: {len(problems)} problem(s)")
        return EXIT_DATAERR
    checked = "integrity, full-text index, " if sqlite else ""
    print(f"{where}: ok ({checked}no orphan rows, schema up to date)")
    return EXIT_OK


def _size(n: int) -> str:
    if n < 2**20:
        return f"{n / 1024:,.1f} KiB"
    return f"{n / 2**20:,.1f} MiB"


@_db_errors
def cmd_compact(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from rsarchive.archive import make_engine
    from rsarchive.archive.codec import MissingCodec
    from rsarchive.archive.compact import COMPACT_LEVEL, CrawlRunning, compact
    from rsarchive.archive.schema import db_argument

    level = COMPACT_LEVEL if args.level is None else args.level
    url = existing_archive(args.db)
    engine = make_engine(url)
    try:
        where = db_argument(engine)
        try:
            result = compact(engine, level=level, everything=args.all)
        except CrawlRunning as exc:
            raise CommandError(str(exc), EXIT_TRY_LATER) from None
        except MissingCodec as exc:
            raise CommandError(str(exc), EXIT_CONFIG) from None
        except OperationalError as exc:
            if "locked" not in str(exc.orig):
                raise
            raise CommandError(
                f"the archive is busy (another process holds its write lock): {exc.orig}; "
                "try again later",
                EXIT_TRY_LATER,
            ) from None
    finally:
        engine.dispose()
    parts = []
    if result.file_bytes_before is not None and result.file_bytes_after is not None:
        before, after = result.file_bytes_before, result.file_bytes_after
        change = (after - before) / before * 100 if before else 0.0
        parts.append(f"{_size(before)} -> {_size(after)} ({change:+.0f}%)")
    dictionary = f", dictionary {result.dictionary_id}" if result.dictionary_id else ""
    earlier = ""
    if result.done_before:
        earlier = f" ({result.done_before:,} done by an earlier compact)"
    if result.captures:
        parts.append(
            f"{result.recompressed:,} of {result.captures:,} captures compressed again "
            f"(zstd level {result.level}{dictionary}): "
            f"{_size(result.body_bytes_before)} -> {_size(result.body_bytes_after)}{earlier}"
        )
    else:
        parts.append(f"no capture to compress again{earlier}")
    if result.fts_optimized:
        parts.append("full-text index optimized")
    if result.vacuumed:
        pages = ""
        if result.page_size_after != result.page_size_before:
            pages = f" (pages of {result.page_size_before} -> {result.page_size_after} bytes)"
        parts.append(f"vacuumed{pages}")
    else:
        parts.append("run VACUUM to return the space to the system (PostgreSQL)")
    print(f"compacted {where}: {'; '.join(parts)}")
    return EXIT_OK
