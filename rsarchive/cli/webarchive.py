"""`rsarchive import` (WARC / WACZ files in) and `rsarchive export --format warc|wacz` (out)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rsarchive.cli import (
    EXIT_CANTCREAT,
    EXIT_DATAERR,
    EXIT_FAILURES,
    EXIT_NOINPUT,
    EXIT_OK,
    EXIT_USAGE,
    MAX_COUNT,
    CommandError,
    add_db_argument,
    database_url,
)
from rsarchive.cli.query import site_url
from rsarchive.cli.reparse import add_jobs_argument, replay_error, replay_errors


def _size(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of bytes: {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {value}")
    if n > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"too large (at most {MAX_COUNT}): {value}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    from rsarchive.settings import DOWNLOAD_MAXSIZE

    cmd = sub.add_parser(
        "import",
        help="read WARC / WARC.gz / WACZ files (rsarchive's, Browsertrix's, wget's, the "
        "Internet Archive's) into the archive",
        description="Store the HTML responses of the configured site (RSARCHIVE_SITE_URL) found "
        "in web-archive files as captures, with their original fetch times, and run them, oldest "
        "first, through the crawl's split, clean and store steps (as `rsarchive reparse --into`). "
        "Other hosts, non-HTML and error responses are counted and skipped; captures the archive "
        "holds already are left out.",
    )
    cmd.add_argument("files", nargs="+", metavar="FILE", help="a .warc, .warc.gz or .wacz file")
    add_db_argument(cmd)
    cmd.add_argument(
        "--max-size",
        type=_size,
        default=DOWNLOAD_MAXSIZE,
        metavar="BYTES",
        help="skip (with a warning) a record or decoded body larger than this "
        "(default: DOWNLOAD_MAXSIZE, %(default)s)",
    )
    add_jobs_argument(cmd)
    cmd.set_defaults(func=cmd_import)


def _warn(message: str) -> None:
    print(f"rsarchive import: warning: {message}", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:

    from rsarchive.archive import Archive
    from rsarchive.interop.importer import DamagedFile, Importer
    from rsarchive.pipelines.replay import default_jobs

    files = [Path(f) for f in args.files]
    for path in files:
        if not path.is_file():
            raise CommandError(f"no such file: {path}", EXIT_NOINPUT)
    target_url = database_url(args.db)
    damaged = None
    try:
        with Archive(target_url) as target:
            job = Importer(target, site_url(), args.max_size, _warn)
            try:
                for path in files:
                    try:
                        job.read(path)
                    except DamagedFile as exc:  # keep what came before it, then stop
                        damaged = str(exc)
                        break
                replay = job.replay([str(p) for p in files], jobs=args.jobs or default_jobs())
            finally:
                job.close()
    except replay_errors() as exc:
        raise replay_error(exc, target_url) from None
    done = job.result
    arts = replay.articles
    print(
        f"imported {done.files} file(s) (run {replay.run_id}): {done.records} response/revisit "
        f"records; {done.staged} new captures: {replay.pages_stored} pages and "
        f"{replay.feed_pages_stored} load-more answers stored; articles: {arts['new']} new, "
        f"{arts['changed']} changed, {arts['updated']} updated, {arts['unchanged']} unchanged; "
        f"{replay.teasers_new} new teasers; {done.already} already in the archive"
    )
    if done.skipped:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(done.skipped.items()))
        print(f"skipped: {why}")
    if damaged:
        raise CommandError(damaged, EXIT_DATAERR)
    if replay.dropped:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(replay.dropped.items()))
        print(f"not archivable, skipped: {why}")
        return EXIT_FAILURES
    return EXIT_OK


def export_captures(args: argparse.Namespace, reader: Any) -> int:
    """`rsarchive export --format warc|wacz`: the captures the filters select, to --output."""
    from rsarchive.archive.filters import date_bound
    from rsarchive.interop.warc import select_captures, warcinfo_fields, write_warc
    from rsarchive.settings import ROBOTSTXT_OBEY, USER_AGENT
    from rsarchive.urls import normalize_url

    if args.format not in ("warc", "wacz"):
        raise CommandError("--url applies to --format warc and wacz only", EXIT_USAGE)
    if not args.output:
        raise CommandError(f"--format {args.format} needs --output FILE", EXIT_USAGE)
    for name in ("author", "section", "type", "until"):
        if getattr(args, name):
            raise CommandError(
                f"--{name} applies to jsonl and csv; warc and wacz take --since and --url",
                EXIT_USAGE,
            )
    since = date_bound(args.since) if args.since else None
    url = normalize_url(args.url, site_url().rstrip("/") + "/") if args.url else None
    ids = select_captures(reader.engine, since, url)
    if url and not ids:
        raise CommandError(f"no capture of {url} in the archive", EXIT_NOINPUT)
    info = warcinfo_fields(USER_AGENT, site_url(), ROBOTSTXT_OBEY)
    # The same refusals as every export: never over the archive, a database or a directory.
    from rsarchive.cli.export import output_target, written_whole

    target = output_target(args)
    if target is None:  # a device or a pipe: written into as it is, never replaced
        if args.format == "wacz":
            raise CommandError(
                f"a WACZ is a zip file: --output must be a regular file, not {args.output}",
                EXIT_USAGE,
            )
        device = Path(args.output)
        try:
            with device.open("wb") as out:
                result = write_warc(reader.engine, ids, out, filename=device.name, info=info)
        except OSError as exc:
            raise CommandError(f"cannot write {device}: {exc.strerror}", EXIT_CANTCREAT) from None
        print(f"exported {result.captures:,} captures to {device}", file=sys.stderr)
        return EXIT_OK
    pages = None
    with written_whole(target) as part:
        if args.format == "wacz":
            from rsarchive.interop.wacz import WaczError, write_wacz

            try:
                result, pages = write_wacz(
                    reader.engine,
                    ids,
                    part,
                    info=info,
                    title=f"rsarchive: {site_url()}",
                    warc_name=f"{target.name.removesuffix('.wacz')}.warc.gz",
                )
            except WaczError as exc:
                raise CommandError(f"cannot pack {target}: {exc}", EXIT_CANTCREAT) from None
        else:
            with part.open("wb") as out:
                result = write_warc(reader.engine, ids, out, filename=target.name, info=info)
    listed = f", {pages} pages listed" if pages is not None else ""
    print(
        f"exported {result.captures:,} captures to {target}: {result.responses:,} responses, "
        f"{result.revisits:,} revisits{listed}; {target.stat().st_size:,} bytes (the archive "
        f"keeps them in {result.captures_bytes:,}; {result.bodies_bytes:,} as received)",
        file=sys.stderr,
    )
    return EXIT_OK
