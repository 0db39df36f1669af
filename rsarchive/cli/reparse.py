"""`rsarchive reparse`: rebuild articles, teasers and revisions from the stored raw pages."""

from __future__ import annotations

import argparse

from rsarchive.cli import (
    EXIT_CONFIG,
    EXIT_DB,
    EXIT_FAILURES,
    EXIT_NOINPUT,
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
    cmd.add_argument(
        "--since",
        metavar="DATE",
        help="only captures fetched at or after DATE (YYYY, YYYY-MM, YYYY-MM-DD or ISO 8601)",
    )
    cmd.add_argument(
        "--url",
        help="only the captures of this URL or path on the site (and the load-more answers of "
        "its feed)",
    )
    cmd.add_argument(
        "--into", metavar="PATH|URL", help="write into this archive instead (created if new)"
    )
    add_jobs_argument(cmd)
    cmd.set_defaults(func=cmd_reparse)


def add_jobs_argument(cmd: argparse.ArgumentParser) -> None:
    """``--jobs N`` of the commands that re-read captures (``reparse``, ``import``)."""
    cmd.add_argument(
        "--jobs",
        metavar="N",
        type=_jobs,
        default=None,
        help="processes that parse (default: one per core); one writer stores, in fetch order, "
        "so the result is the same for any N",
    )


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or value > MAX_JOBS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of processes, 1 to {MAX_JOBS}: {text!r}"
        )
    return value


#: More processes than this is a typo, not a machine.
MAX_JOBS = 1024


def replay_errors() -> tuple[type[BaseException], ...]:
    """What a re-read of captures turns into one line (``replay_error``). A function: the
    command line imports no SQLAlchemy before a command needs it (an ``except`` clause
    evaluates it only when something was raised)."""
    from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

    from rsarchive.archive.codec import MissingCodec

    return (NoSuchModuleError, ImportError, SQLAlchemyError, MissingCodec)


def replay_error(exc: BaseException, opening: str) -> CommandError:
    """One line for what stops a re-read of captures (``reparse``, ``import``) in the archive
    at ``opening``: a missing driver or codec is a configuration problem, as for every reading
    command (``opening.MissingDriver``); the rest is the database's."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

    if isinstance(exc, ImportError | NoSuchModuleError):
        where = make_url(opening).render_as_string(hide_password=True)
        return CommandError(f"cannot open {where}: {exc}", EXIT_CONFIG)
    if isinstance(exc, SQLAlchemyError):
        reason = getattr(exc, "orig", None) or exc
        return CommandError(f"archive database error: {reason}", EXIT_DB)
    return CommandError(str(exc), EXIT_CONFIG)  # MissingCodec


def cmd_reparse(args: argparse.Namespace) -> int:

    from rsarchive.archive import Archive
    from rsarchive.archive.filters import date_bound
    from rsarchive.archive.opening import BadDate
    from rsarchive.cli.db import existing_archive
    from rsarchive.cli.query import site_url
    from rsarchive.pipelines.reparse import NoCaptures, reparse
    from rsarchive.pipelines.replay import default_jobs
    from rsarchive.progress import command_progress
    from rsarchive.urls import normalize_url

    try:
        since = date_bound(args.since) if args.since else None
    except BadDate as exc:
        raise CommandError(f"--since: {exc}", EXIT_USAGE) from None
    # A path (/2021/05/19/slug/) names a page of the site, as in `rsarchive show`.
    url = normalize_url(args.url, site_url().rstrip("/") + "/") if args.url else None
    source_url = existing_archive(args.db)
    target_url = database_url(args.into) if args.into else source_url
    opening = source_url
    jobs = args.jobs or default_jobs()
    progress = command_progress("reparse", None, unit="captures")
    report = progress.update if progress else None
    try:
        with Archive(source_url) as source:
            if target_url == source_url:
                result = reparse(source, source, since=since, url=url, jobs=jobs, progress=report)
            else:
                opening = target_url
                with Archive(target_url) as target:
                    result = reparse(
                        source, target, since=since, url=url, jobs=jobs, progress=report
                    )
    except replay_errors() as exc:
        raise replay_error(exc, opening) from None
    except NoCaptures as exc:
        raise CommandError(str(exc), EXIT_NOINPUT) from None
    finally:
        if progress:
            progress.close()
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
