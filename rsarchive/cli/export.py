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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rsarchive.cli import EXIT_CANTCREAT, EXIT_OK, EXIT_USAGE, CommandError, add_db_argument
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
    p.add_argument(
        "--format",
        choices=(*FORMATS, *CAPTURE_FORMATS),
        default=None,
        help="default: from the --output file's extension (.jsonl, .csv, .warc.gz, .wacz), else "
        "jsonl; warc/wacz: the stored raw captures as a web archive (needs --output; --since is "
        "then the fetch time)",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write to FILE (complete or not at all) instead of standard output",
    )
    p.add_argument(
        "--url", help="warc/wacz: only the captures of this page (and its feed's answers)"
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


#: Each format's writer: ``write(rows, text stream) -> count``.
FORMATS = {"jsonl": write_jsonl, "csv": write_csv}
#: The raw captures as a web archive (``cli/webarchive.py``).
CAPTURE_FORMATS = ("warc", "wacz")
#: File name endings that name a format (``-o x.csv`` needs no ``--format``).
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".warc": "warc",
    ".warc.gz": "warc",
    ".wacz": "wacz",
}


def output_format(fmt: str | None, output: str | None) -> str:
    """The format asked for: ``--format``, else the output file's extension, else jsonl; a
    ``--format`` that contradicts the extension is a usage error."""
    name = Path(output).name.lower() if output else ""
    implied = next((f for ext, f in EXTENSIONS.items() if name.endswith(ext)), None)
    if fmt and implied and fmt != implied:
        raise CommandError(
            f"--format {fmt} contradicts the extension of {output} ({implied}): drop --format "
            "or rename the file",
            EXIT_USAGE,
        )
    return fmt or implied or "jsonl"


def _with_progress(rows: Iterator[dict[str, Any]], total: int) -> Iterator[dict[str, Any]]:
    from rsarchive.progress import command_progress

    progress = command_progress("export", total, unit="articles")
    if progress is None:
        yield from rows
        return
    with progress:
        for n, row in enumerate(rows, start=1):
            yield row
            progress.update(n)


@reads_archive
def cmd_export(args: argparse.Namespace, reader: Any) -> int:
    args.format = output_format(args.format, args.output)
    if args.format in CAPTURE_FORMATS or args.url:
        from rsarchive.cli.webarchive import export_captures

        return export_captures(args, reader)
    write = FORMATS[args.format]
    rows = _with_progress(reader.export(args.filters), reader.count_articles(args.filters))
    if not args.output:
        write(rows, sys.stdout)
        return EXIT_OK
    target = output_target(args)
    if target is None:  # a device or a pipe: written to, never replaced
        return _write_stream(write, rows, Path(args.output))
    with written_whole(target) as part, part.open("w", encoding="utf-8", newline="") as out:
        n = write(rows, out)
    print(f"exported {n:,} articles to {target}", file=sys.stderr)
    return EXIT_OK


SQLITE_HEADER = b"SQLite format 3\x00"


def output_target(args: argparse.Namespace) -> Path | None:
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


@contextmanager
def written_whole(target: Path) -> Iterator[Path]:
    """A temporary file beside ``target`` to write into: renamed over ``target`` when the block
    ends, removed when it fails, so the file is written whole or not at all."""
    part = target.with_name(f".{target.name}.part")
    try:
        yield part
        os.replace(part, target)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise CommandError(f"cannot write {target}: {exc.strerror}", EXIT_CANTCREAT) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _write_stream(write: Any, rows: Any, path: Path) -> int:
    """Write into a device or a pipe as it is (no temporary file, nothing renamed)."""
    try:
        with path.open("w", encoding="utf-8", newline="") as out:
            n = write(rows, out)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}", EXIT_CANTCREAT) from None
    print(f"exported {n:,} articles to {path}", file=sys.stderr)
    return EXIT_OK
