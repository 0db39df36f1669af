"""`rsarchive export`: every article (or those the filters select) as JSON Lines or CSV, streamed.

The field layout is ``rsarchive.archive.queries.EXPORT_FIELDS`` (documented in the README):
``authors`` and ``tags`` are lists in JSON Lines and joined with ``"; "`` in CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import stat
import sys
from pathlib import Path
from typing import IO, Any

from rsarchive.cli import EXIT_CANTCREAT, EXIT_OK, CommandError, add_db_argument
from rsarchive.cli.query import add_filter_arguments, reads_archive

LIST_SEPARATOR = "; "


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="stream every article as JSON Lines or CSV",
        description="Stream every article matching the filters, in archive order (by id), in "
        "constant memory. JSON Lines: one object per article, authors and tags as lists. CSV: a "
        f"header row, authors and tags joined with {LIST_SEPARATOR!r}.",
    )
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default: jsonl")
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write to FILE (complete or not at all) instead of standard output",
    )
    add_filter_arguments(p)
    add_db_argument(p)
    p.set_defaults(func=cmd_export)


def write_jsonl(rows: Any, out: IO[str]) -> int:
    n = 0
    for n, row in enumerate(rows, start=1):  # noqa: B007 (n is the count)
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return n


def write_csv(rows: Any, out: IO[str]) -> int:
    from rsarchive.archive.queries import EXPORT_FIELDS

    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for n, row in enumerate(rows, start=1):  # noqa: B007
        row["authors"] = LIST_SEPARATOR.join(row["authors"])
        row["tags"] = LIST_SEPARATOR.join(row["tags"])
        writer.writerow(row)
    return n


@reads_archive
def cmd_export(args: argparse.Namespace, reader: Any) -> int:
    rows = reader.export(args.filters)
    write = write_csv if args.format == "csv" else write_jsonl
    if not args.output:
        write(rows, sys.stdout)
        return EXIT_OK
    target = _output_target(args)
    if target is None:  # a device or a pipe: written to, never replaced
        return _write_stream(write, rows, Path(args.output))
    part = target.with_name(f".{target.name}.part")
    try:
        with part.open("w", encoding="utf-8", newline="") as out:
            n = write(rows, out)
        os.replace(part, target)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise CommandError(f"cannot write {target}: {exc.strerror}", EXIT_CANTCREAT) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    print(f"exported {n:,} articles to {target}", file=sys.stderr)
    return EXIT_OK


SQLITE_HEADER = b"SQLite format 3\x00"


def _output_target(args: argparse.Namespace) -> Path | None:
    """The regular file ``--output`` names (symbolic links followed), or None for a device or a
    pipe. Refuses (73) the archive and its side files (journal, lock), any SQLite database and a
    directory: an export never replaces a database or a device node."""
    from rsarchive.archive.engine import sqlite_file
    from rsarchive.cli import database_url

    given = Path(args.output)
    target = given.resolve()
    archive = sqlite_file(database_url(args.db))
    if archive is not None:
        archive = archive.resolve()
        sidecars = {
            archive,
            *(Path(f"{archive}{s}") for s in ("-wal", "-shm", "-journal", ".lock")),
        }
        if target in sidecars:
            raise CommandError(f"refusing to write over the archive {archive}", EXIT_CANTCREAT)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise CommandError(f"cannot write {given}: {exc.strerror}", EXIT_CANTCREAT) from None
    if stat.S_ISDIR(mode):
        raise CommandError(f"cannot write {given}: it is a directory", EXIT_CANTCREAT)
    if not stat.S_ISREG(mode):
        return None
    try:
        with target.open("rb") as existing:
            is_database = existing.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError as exc:
        raise CommandError(f"cannot write {given}: {exc.strerror}", EXIT_CANTCREAT) from None
    if is_database:
        raise CommandError(
            f"refusing to write over {given}: it is a SQLite database", EXIT_CANTCREAT
        )
    return target


def _write_stream(write: Any, rows: Any, path: Path) -> int:
    """Write into a device or a pipe as it is (no temporary file, nothing renamed)."""
    try:
        with path.open("w", encoding="utf-8", newline="") as out:
            n = write(rows, out)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}", EXIT_CANTCREAT) from None
    print(f"exported {n:,} articles to {path}", file=sys.stderr)
    return EXIT_OK
