"""`rsarchive demo`: crawl the bundled fixture site offline into a fresh SQLite file, show it."""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from rsarchive.cli import EXIT_CONFIG, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, CommandError


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="crawl the bundled fixture site offline into a fresh SQLite file and show it",
        description="Crawl the bundled fixture site (real-shaped Responsible Statecraft pages) "
        "with the real spider and pipeline, offline, into a fresh SQLite file; then show what "
        "was archived.",
    )
    demo.add_argument(
        "--db",
        default="rsarchive-demo.db",
        help="the SQLite file to create (default: %(default)s); an existing file is replaced "
        "only if an earlier demo made it",
    )
    demo.add_argument("--verbose", action="store_true", help="show Scrapy's log")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from rsarchive.archive import Archive
    from rsarchive.cli.crawl import project_settings, run_spider
    from rsarchive.demo import FIXTURE_ORIGIN, FixtureSite, fixtures_dir

    if "://" in args.db:
        raise CommandError(
            f"--db takes a file path, not a URL ({args.db}): the demo makes a fresh SQLite file",
            EXIT_USAGE,
        )
    db = Path(args.db).expanduser().resolve()
    _check_replaceable(db)
    try:
        site = FixtureSite(fixtures_dir())
    except FileNotFoundError as exc:
        raise CommandError(str(exc), EXIT_CONFIG) from exc
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    urls = site.page_urls()
    settings = project_settings(
        {
            "RSARCHIVE_DATABASE_URL": f"sqlite:///{db}",
            # The fixture pages are on this origin, whatever site the environment names.
            "RSARCHIVE_SITE_URL": FIXTURE_ORIGIN,
            # Also what marks the run as a demo's in crawl_runs.args (``fixture_site``).
            "RSARCHIVE_FIXTURE_SITE": str(site.root),
            # Offline: no server to be polite to.
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "LOG_LEVEL": "INFO" if args.verbose else "ERROR",
        }
    )
    outcome = run_spider(settings, "article", {"urls": ",".join(urls)}, verbose=False)
    if outcome.error:
        raise CommandError(f"the demo crawl could not start: {outcome.error}", EXIT_CONFIG)
    stats = outcome.stats
    if stats.get("rsarchive/config_error"):
        raise CommandError(f"configuration error: {stats['rsarchive/config_error']}", EXIT_CONFIG)
    with Archive(f"sqlite:///{db}") as archive:
        rows = archive.list_articles(limit=100)
        teasers = archive.count_teasers()
    _print_demo(db, len(urls), stats, rows, teasers)
    return EXIT_OK if stats.get("rsarchive/pages_stored") else EXIT_FAILURES


def _check_replaceable(db: Path) -> None:
    """Refuse (78) to replace a file that an earlier demo did not make: it may be an archive.

    A demo archive is an rsarchive archive whose every crawl run read the bundled fixture site
    (``fixture_site`` in ``crawl_runs.args``).
    """
    if not db.exists():
        return
    refuse = f"will not replace {db}: "
    if not db.is_file():
        raise CommandError(refuse + "it is not a file", EXIT_CONFIG)
    try:
        # Read-only: a file that is not a database must come out of this unchanged.
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
            args = [row[0] for row in conn.execute("SELECT args FROM crawl_runs")]
    except sqlite3.Error:
        raise CommandError(
            refuse + "it is not an rsarchive archive made by `rsarchive demo`; "
            "give another --db or remove it yourself",
            EXIT_CONFIG,
        ) from None
    if not args or not all(_demo_args(a) for a in args):
        what = "crawls that are not demo runs" if args else "no demo run"
        raise CommandError(
            refuse + f"the archive holds {what}; give another --db or remove it yourself",
            EXIT_CONFIG,
        )


def _demo_args(value: str | None) -> bool:
    try:
        args = json.loads(value or "null")
    except ValueError:
        return False
    return isinstance(args, dict) and bool(args.get("fixture_site"))


def _print_demo(db: Path, fetched: int, stats: dict, rows: list[dict], teasers: int) -> None:
    out = sys.stdout
    stored = stats.get("rsarchive/pages_stored", 0)
    dropped = {
        k.rsplit("/", 1)[-1]: v for k, v in stats.items() if k.startswith("rsarchive/dropped/")
    }
    print(
        f"Crawled {fetched} pages of the bundled fixture site (offline) into {db}",
        file=out,
    )
    listings = stored - len(rows)
    listed = f" and {listings} listing page{'s' * (listings != 1)}" if listings > 0 else ""
    print(
        f"  archived {stored} pages: {len(rows)} articles{listed}, {teasers} keep-reading teasers",
        file=out,
    )
    if dropped:
        why = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(dropped.items()))
        print(f"  not archivable, dropped with a reason: {why}", file=out)
        print(
            "    (on purpose: the fixture site holds a missing page and a page without a "
            "headline,\n     to show how failures are reported; so the run's crawl_runs row says "
            "exit code 1)",
            file=out,
        )
    drift = stats.get("rsarchive/layout_drift", 0)
    if drift:
        print(f"  layout_drift: {drift} fields came from fallback selectors", file=out)
        print(
            "    (expected: some fixture pages are in drifted layouts, to exercise the fallbacks)",
            file=out,
        )
    print(file=out)
    cols = [("TITLE", 46), ("SECTION", 18), ("AUTHORS", 26), ("PUBLISHED", 10), ("TEASERS", 7)]
    print("  ".join(name.ljust(width) for name, width in cols), file=out)
    for row in rows:
        cells = [
            row["title"],
            row.get("section") or "",
            row.get("authors") or "",
            (row.get("published_at") or "")[:10],
            str(row.get("teaser_count", 0)),
        ]
        print(
            "  ".join(_fit(c, w).ljust(w) for c, (_, w) in zip(cells, cols, strict=True)),
            file=out,
        )
    print(file=out)
    cmd = command_name()
    shown = _shown_path(db)
    print("Query it, for example:", file=out)
    print(f"  {cmd} search iran --db {shown}", file=out)
    print(f"  {cmd} show /2021/05/19/blinken-lavrov-iceland/ --db {shown}", file=out)
    print(f"  {cmd} serve --db {shown}      # the archive in your browser", file=out)
    if not _has_datasette():
        pip = cmd.replace("rsarchive", "pip") if cmd.endswith("/rsarchive") else "pip"
        print(f"    (serve needs Datasette first: {pip} install 'rsarchive[web]')", file=out)
    print(
        f'  sqlite3 {shown} "SELECT published_at, title FROM articles ORDER BY published_at DESC"',
        file=out,
    )
    if "/" in cmd:
        bin_dir = cmd.rsplit("/", 1)[0]
        print(f"(or `. {bin_dir}/activate` once, then type plain `rsarchive ...`)", file=out)


def command_name() -> str:
    """How to type this very ``rsarchive`` in the shell that ran it: ``rsarchive`` when that
    finds it, else the venv's script as a path (``.venv/bin/rsarchive`` after the README's
    first command, which never activates the venv)."""
    script = Path(sys.executable).parent / "rsarchive"
    found = shutil.which("rsarchive")
    if found and (not script.exists() or Path(found).resolve() == script.resolve()):
        return "rsarchive"
    if not script.exists():
        return f"{sys.executable} -m rsarchive.cli"
    return str(_shown_path(script.absolute()))


def _shown_path(path: Path) -> Path | str:
    """A path as short as it can be typed from here: relative under the working directory."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _has_datasette() -> bool:
    import importlib.util

    return importlib.util.find_spec("datasette") is not None


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
