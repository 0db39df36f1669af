"""`rsarchive reparse`: rebuild articles, teasers and revisions from the stored raw pages."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from rsarchive.cli import (
    EXIT_CONFIG,
    EXIT_DB,
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_db_argument,
    database_url,
)


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "reparse",
        help="rebuild articles, teasers and revisions from the stored captures (no network)",
        description="Re-read the stored raw pages (captures), in the order they were fetched, "
        "through the crawl's own split, clean and store steps. No network. Into the same "
        "archive (a changed parser adds revisions, marked with its version) or, with --into, "
        "into another one.",
    )
    add_db_argument(cmd)
    cmd.add_argument("--since", metavar="DATE", help="only captures fetched at or after DATE")
    cmd.add_argument(
        "--url", help="only the captures of this URL (and the load-more answers of its feed)"
    )
    cmd.add_argument(
        "--into", metavar="PATH|URL", help="write into this archive instead (created if new)"
    )
    cmd.set_defaults(func=cmd_reparse)


def _since(value: str | None) -> str | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(
            f"--since {value}: not a date (2026-11-25 or 2026-11-25T14:00:00Z)", EXIT_USAGE
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_reparse(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from rsarchive.archive import Archive
    from rsarchive.archive.store import MissingCodec
    from rsarchive.cli.db import existing_archive
    from rsarchive.pipelines.reparse import reparse

    since = _since(args.since)
    source_url = existing_archive(args.db)
    target_url = database_url(args.into) if args.into else source_url
    try:
        with Archive(source_url) as source:
            if target_url == source_url:
                result = reparse(source, source, since=since, url=args.url)
            else:
                with Archive(target_url) as target:
                    result = reparse(source, target, since=since, url=args.url)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise CommandError(f"archive database error: {reason}", EXIT_DB) from exc
    except MissingCodec as exc:
        raise CommandError(str(exc), EXIT_CONFIG) from exc
    arts = result.articles
    print(
        f"re-parsed {result.captures} captures (run {result.run_id}): "
        f"{result.pages_stored} pages and {result.feed_pages_stored} load-more answers stored; "
        f"articles: {arts['new']} new, "
        f"{arts['changed']} changed, {arts['updated']} updated, {arts['unchanged']} unchanged; "
        f"{result.teasers_new} new teasers"
    )
    if result.dropped:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(result.dropped.items()))
        print(f"not archivable now, skipped: {why}")
        return EXIT_FAILURES
    return EXIT_OK
