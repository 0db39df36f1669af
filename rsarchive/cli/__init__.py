"""The `rsarchive` command: run crawls for cron, query and maintain the archive, run the demo.

Each sub-command lives in its own module of this package and registers itself through
``register(subparsers)``; this module holds what they share: exit codes, ``--db`` handling,
and errors without tracebacks (``crawl.run_spider`` runs a spider in-process).

Exit codes (docs/architecture.md §5): 0 ok; 1 finished with failures; 3 stopped early; 64 usage;
74 database I/O; 75 try later; 78 configuration or schema problem. The query commands add
65 (a malformed search query) and 66 (no such article or page in the archive).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Defined in rsarchive.exitcodes (the crawl pipeline needs them too); re-exported here.
from rsarchive.exitcodes import (
    EXIT_CANTCREAT,
    EXIT_CONFIG,
    EXIT_DATAERR,
    EXIT_DB,
    EXIT_FAILURES,
    EXIT_NOINPUT,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_TRY_LATER,
    EXIT_USAGE,
)

__all__ = [
    "COMMAND_MODULES",
    "EXIT_CANTCREAT",
    "EXIT_CONFIG",
    "EXIT_DATAERR",
    "EXIT_DB",
    "EXIT_FAILURES",
    "EXIT_NOINPUT",
    "EXIT_OK",
    "EXIT_STOPPED",
    "EXIT_TRY_LATER",
    "EXIT_USAGE",
    "CommandError",
    "add_db_argument",
    "database_url",
    "main",
    "whole_number",
]

#: Sub-command modules, in the order ``rsarchive --help`` lists them.
COMMAND_MODULES = (
    "crawl", "query", "export", "history", "reparse", "webarchive", "db", "serve", "demo",
)  # fmt: skip

DEFAULT_DATABASE_URL = "sqlite:///rsarchive.db"

#: The largest count an option takes: far beyond any archive, and safe for every database's
#: integers (SQLite's are 64-bit; a sum such as limit + offset must not overflow either).
MAX_COUNT = 2**31 - 1


class CommandError(Exception):
    """A failure to report as one line on stderr (no traceback) with a documented exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURES) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2; our contract says 64
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def whole_number(value: str) -> int:
    """An argparse ``type`` for counts (``--limit``, ``--offset``, ``--runs``, ...): 0 to
    ``MAX_COUNT``; anything else is a usage error (64), never a traceback."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    if n > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"too large (at most {MAX_COUNT}): {value}")
    return n


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    """``--db PATH|URL``: a SQLite file path or any SQLAlchemy URL (see ``database_url``)."""
    parser.add_argument(
        "--db",
        metavar="PATH|URL",
        default=None,
        help="the archive: a SQLite file or a SQLAlchemy URL (default: $RSARCHIVE_DATABASE_URL, "
        f"else {DEFAULT_DATABASE_URL})",
    )


def database_url(value: str | None) -> str:
    """The SQLAlchemy URL for a ``--db`` value (else ``$RSARCHIVE_DATABASE_URL``): a URL as
    given, a path as a SQLite file URL (quoted: ``c%20d.db`` is that file, not ``c d.db``)."""
    from rsarchive.archive.engine import as_database_url

    # $RSARCHIVE_DATABASE_URL may be a plain path too, as --db may.
    return as_database_url(
        value or os.environ.get("RSARCHIVE_DATABASE_URL") or DEFAULT_DATABASE_URL
    )


@contextmanager
def read_errors() -> Iterator[None]:
    """Turn what reading the archive can raise into one line and its documented exit code.

    The same for every command that opens the archive (``opening.open_archive``): missing or
    unreadable 74; not an archive, an empty database, a missing driver 78.
    """
    from sqlalchemy.exc import DBAPIError

    from rsarchive.archive import opening as q

    codes = (
        (q.BadQuery, EXIT_DATAERR),
        (q.BadDate, EXIT_USAGE),
        (q.NotFound, EXIT_NOINPUT),
        (q.ArchiveMissing, EXIT_DB),
        (q.ArchiveUnreadable, EXIT_DB),
    )
    try:
        yield
    except q.ReadError as exc:
        code = next((c for kind, c in codes if isinstance(exc, kind)), EXIT_CONFIG)
        raise CommandError(str(exc), code) from None
    except DBAPIError as exc:  # locked past the busy timeout, disk I/O, a damaged file
        raise CommandError(f"cannot read the archive: {exc.orig}", EXIT_DB) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rsarchive", description=__doc__.splitlines()[0])
    from rsarchive import __version__

    parser.add_argument("--version", action="version", version=f"rsarchive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rsarchive.archive.schema import SchemaError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CommandError as exc:
        print(f"rsarchive {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except SchemaError as exc:  # raised by Archive() in any command: the message says the fix
        print(f"rsarchive {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `rsarchive ... | head`
        # Point stdout at devnull so the interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
