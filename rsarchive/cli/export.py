"""`rsarchive export`: every article (or those the filters select) as JSON Lines or CSV, streamed.

The field layout is ``rsarchive.archive.queries.EXPORT_FIELDS`` (documented in the README):
``authors`` and ``tags`` are lists in JSON Lines and joined with ``"; "`` in CSV.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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
    p.add_argument(
        "--format",
        choices=("jsonl", "csv", "warc", "wacz"),
        default="jsonl",
        help="default: jsonl; warc/wacz: the stored raw captures as a web archive (needs "
        "--output; --since is then the fetch time)",
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


@reads_archive
def cmd_export(args: argparse.Namespace, reader: Any) -> int:
    if args.format in ("warc", "wacz") or args.url:
        from rsarchive.cli.webarchive import export_captures

        return export_captures(args, reader)
    rows = reader.export(args.filters)
    write = write_csv if args.format == "csv" else write_jsonl
    if not args.output:
        write(rows, sys.stdout)
        return EXIT_OK
    target = Path(args.output)
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
