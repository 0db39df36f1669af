"""The archive on a live PostgreSQL server: crawls, migrations, commands and views, against SQLite.

The server is a throwaway cluster on 127.0.0.1 (``tests/pg.py``): installed from Debian when
missing, skipped where it cannot be had (failed under CI).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import ROOT, CrawlResult, rsarchive, running_site, scrapy_crawl
from pg import PostgresServer, postgres_server
from sqlalchemy import Row, select, text
from test_fidelity import edit_seed
from test_migrations import check_0009_round_trip

from rsarchive.archive import make_engine
from rsarchive.archive.models import metadata
from rsarchive.archive.schema import alembic_config, head_revision, include_name
from rsarchive.archive.views import VIEW_NAMES

# Every time the clock gives in this session is later than this (the fixture pages are older).
CRAWLED_SINCE = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

# Columns the clock fills (when a row was seen, fetched, run), not the pages.
CLOCK_COLUMNS = {
    "first_seen_at", "last_seen_at", "changed_at", "fetched_at", "captured_at",
    "last_attempt_at", "last_success_at", "started_at", "finished_at",
}  # fmt: skip
# How a capture's body is kept (not what was received).
COMPRESSED = {"body", "compression", "dictionary_id"}
# What a re-crawl of unchanged pages may move.
RESIGHTING_COLUMNS = {"last_seen_at", "last_attempt_at", "last_success_at"}
# What a foreign key is compared by: the row it names, by that row's natural key.
NATURAL_KEY = {
    "articles": "url",
    "authors": "name",
    "tags": "name",
    "captures": "sha256",
    "teaser_contents": "content_hash",
}


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def crawl_into(url: str, site_url: str, urls: list[str]) -> CrawlResult:
    """`scrapy crawl article` of ``urls`` into the database at ``url`` (one request at a time,
    so two crawls store the pages in the same order and give them the same ids)."""
    settings = {"RSARCHIVE_DATABASE_URL": url, "CONCURRENT_REQUESTS": "1"}
    return scrapy_crawl(
        "article", Path("unused.db"), site_url, "-a", f"urls={','.join(urls)}", settings=settings
    )


class Archives:
    """The fixture site crawled once into SQLite and once into PostgreSQL."""

    def __init__(self, sqlite_url: str, pg_url: str, site: str, urls: list[str]) -> None:
        self.sqlite_url, self.pg_url, self.site, self.urls = sqlite_url, pg_url, site, urls

    def both(self) -> tuple[str, str]:
        return self.sqlite_url, self.pg_url


@pytest.fixture(scope="module")
def archives(pg, fixture_site, tmp_path_factory) -> Archives:
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('pg') / 'archive.db'}"
    pg_url = pg.new_database()
    with running_site(fixture_site) as server:
        urls = [server.page_url(page.name) for page in fixture_site.pages.values()]
        for url in (sqlite_url, pg_url):
            result = crawl_into(url, server.url, urls)
            # Two fixture pages are not archivable (a 404, no headline): the ten others are.
            assert "Traceback" not in result.log, result.log
            assert "'rsarchive/articles_new': 10" in result.log, result.log
        return Archives(sqlite_url, pg_url, server.url, urls)


def rows(url: str, sql: str, **params: object) -> list[Row]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def content(url: str, *, received_only: bool = False) -> dict[str, list[tuple]]:
    """Every table's rows as the pages made them: no ids, no clock times, foreign keys by the
    natural key of the row they name; rows sorted (the two engines may number them apart).

    ``received_only``: leave out how bodies are compressed (the zstd dictionaries and what each
    capture was compressed with), which depends on the order the pages arrived in; the sha256
    and size of each body still say what was received."""
    engine = make_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                if table.name == "crawl_runs" or (
                    received_only and table.name == "capture_dictionaries"
                ):
                    continue
                columns, joined = [], table
                for column in table.c:
                    if column.name == "id" or column.name in CLOCK_COLUMNS:
                        continue
                    if received_only and table.name == "captures" and column.name in COMPRESSED:
                        continue
                    fk = next(iter(column.foreign_keys), None)
                    if fk is None:
                        columns.append(column)
                        continue
                    parent = fk.column.table
                    if parent.name not in NATURAL_KEY:
                        continue  # the crawl run: a different one per database
                    ref = parent.alias(f"ref_{column.name}")
                    joined = joined.outerjoin(ref, ref.c.id == column)
                    columns.append(ref.c[NATURAL_KEY[parent.name]].label(column.name))
                found = conn.execute(select(*columns).select_from(joined)).all()
                out[table.name] = sorted((_comparable(table.name, r) for r in found), key=repr)
    finally:
        engine.dispose()
    return out


def dump(url: str) -> dict[str, list[tuple]]:
    """Every row but the crawl runs', ids included, minus the times a re-sighting moves."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [
                    tuple(r)
                    for r in conn.execute(
                        select(*(c for c in table.c if c.name not in RESIGHTING_COLUMNS)).order_by(
                            table.c.id
                        )
                    )
                ]
                for table in metadata.sorted_tables
                if table.name != "crawl_runs"
            }
    finally:
        engine.dispose()


def _comparable(table: str, row: tuple) -> tuple:
    values = list(row._mapping.items())  # type: ignore[attr-defined]
    if table == "captures":
        # The response headers hold the Date the test server sent.
        values = [
            (k, {h: v for h, v in json.loads(v).items() if h.lower() != "date"})
            if k == "headers" and v
            else (k, v)
            for k, v in values
        ]
    return tuple(values)


# -- crawling ------------------------------------------------------------------------------


def test_a_crawl_into_postgresql_archives_what_it_archives_into_sqlite(archives):
    on_sqlite, on_pg = content(archives.sqlite_url), content(archives.pg_url)
    assert set(on_pg) == set(on_sqlite)
    for table in on_sqlite:
        assert on_pg[table] == on_sqlite[table], table
    # Not vacuous: the fixture site's articles, teasers, authors, revisions, raw pages (11) and
    # load-more answers (9).
    counts = {t: len(r) for t, r in on_pg.items()}
    assert counts == {
        "articles": 10, "revisions": 10, "authors": 11, "article_authors": 11, "tags": 18,
        "article_tags": 19, "article_images": 2, "teaser_sightings": 26, "teaser_contents": 26,
        "captures": 20, "fetch_state": 13,
        "capture_dictionaries": 0,  # 11 pages: fewer than the first dictionary waits for
    }  # fmt: skip
    # The raw bytes read back the same from bytea as from a SQLite blob.
    assert rows(archives.pg_url, "SELECT sum(size) FROM captures") == rows(
        archives.sqlite_url, "SELECT sum(size) FROM captures"
    )


def test_a_recrawl_into_postgresql_changes_nothing_but_last_seen(pg, fixture_site):
    url = pg.new_database()
    with running_site(fixture_site) as server:
        urls = [server.page_url(c) for c in ("seed", "two-authors", "tag-listing")]
        first = crawl_into(url, server.url, urls)
        assert first.returncode == 0, first.log
        before = dump(url)
        seen = rows(url, "SELECT max(last_seen_at) FROM teasers")
        second = crawl_into(url, server.url, urls)
        assert second.returncode == 0, second.log
    assert dump(url) == before
    assert len(before["articles"]) == 2 and len(before["teaser_sightings"]) == 13
    assert rows(url, "SELECT status, exit_code FROM crawl_runs ORDER BY id") == [
        ("finished", 0),
        ("finished", 0),
    ]
    assert rows(url, "SELECT max(last_seen_at) FROM teasers") >= seen
    (stats,) = rows(url, "SELECT stats FROM crawl_runs ORDER BY id DESC LIMIT 1")[0]
    assert json.loads(stats)["rsarchive/articles_unchanged"] == 2


def test_an_edit_gives_a_revision_that_history_and_diff_show_on_postgresql(pg, fixture_site):
    url = pg.new_database()
    with running_site(fixture_site) as server:
        seed = server.page_url("seed")
        assert crawl_into(url, server.url, [seed]).returncode == 0
        edit_seed(server, b"amicable in tone", b"frosty and guarded in tone")
        assert crawl_into(url, server.url, [seed]).returncode == 0
    assert rows(url, "SELECT count(*) FROM revisions") == [(2,)]
    history = rsarchive("history", seed, "--db", url)
    assert history.returncode == 0, history.stderr
    assert "2 revisions" in history.stdout and "body: +2 words, +10 chars" in history.stdout
    diff = rsarchive("diff", seed, "--words", "--db", url)
    assert diff.returncode == 0, diff.stderr
    assert "[-amicable-] {+frosty and guarded+} in tone" in diff.stdout


def test_feed_runs_from_cron_reparse_and_history_on_postgresql(pg, fixture_site, tmp_path):
    url = pg.new_database()
    with running_site(fixture_site) as server:
        argv = ["crawl", "feed", "--db", url]
        site = ["-s", f"RSARCHIVE_SITE_URL={server.url}", "-s", "DOWNLOAD_DELAY=0"]
        # No SQLite file to put the logs and the lock beside: the log directory must be named.
        unnamed = rsarchive(*argv, *site)
        assert unnamed.returncode == 64 and "set --log-dir" in unnamed.stderr
        for _ in range(2):
            done = rsarchive(*argv, *site, "--log-dir", str(tmp_path))
            assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        seed = server.page_url("seed")
    assert (tmp_path / "crawl.lock").exists()
    first, second = (
        json.loads(log.read_text(encoding="utf-8").splitlines()[-1])
        for log in sorted(tmp_path.glob("*-feed.log"))
    )
    # The second run is caught up: the feeds and listings, no article (fetch_state kept it).
    assert first["stats"]["rsarchive/articles_new"] == 10
    assert "rsarchive/articles_new" not in second["stats"]
    assert second["stats"]["downloader/request_count"] < first["stats"]["downloader/request_count"]
    assert rows(url, "SELECT spider, exit_code FROM crawl_runs ORDER BY id") == [
        ("feed", 0),
        ("feed", 0),
    ]
    assert rows(url, "SELECT count(*) FROM fetch_state WHERE last_status = 200")[0][0] >= 10

    history = rsarchive("history", seed, "--db", url)
    assert history.returncode == 0 and "first version" in history.stdout, history.stderr
    # The raw pages rebuild the same archive in another PostgreSQL database.
    into = pg.new_database()
    rebuilt = rsarchive("reparse", "--db", url, "--into", into)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert pg.password not in rebuilt.stdout + rebuilt.stderr
    original, copy = content(url), content(into)
    # Load-more answers are captures too, so the whole keep-reading feed comes back.
    for table in (
        "articles",
        "authors",
        "article_authors",
        "tags",
        "revisions",
        "teaser_sightings",
        "teaser_contents",
    ):
        assert copy[table] == original[table], table


# -- schema: db upgrade / current / check ------------------------------------------------------


def test_db_upgrade_current_and_check_on_a_new_postgresql_database(pg):
    url = pg.new_database()
    shown = url.replace(pg.password, "***")
    head = head_revision()
    created = rsarchive("db", "upgrade", "--db", url)
    assert (created.returncode, created.stdout) == (
        0,
        f"created a new archive at schema {head}: {shown}\n",
    ), created.stderr
    assert pg.password not in created.stdout + created.stderr
    again = rsarchive("db", "upgrade", "--db", url)
    assert again.stdout == f"the archive is up to date (schema {head}): {shown}\n"
    current = rsarchive("db", "current", "--db", url)
    assert (current.returncode, current.stdout) == (0, f"schema {head} (up to date)\n")
    check = rsarchive("db", "check", "--db", url)
    # No SQLite integrity check or full-text index here: the line says what was checked.
    assert (check.returncode, check.stdout) == (
        0,
        f"{shown}: ok (no orphan rows, schema up to date)\n",
    ), check.stderr
    _assert_schema_is_the_models(url)


def _assert_schema_is_the_models(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": include_name}
            )
            assert compare_metadata(context, metadata) == []
            views = conn.execute(
                text(
                    "SELECT table_name FROM information_schema.views WHERE table_schema = 'public'"
                )
            ).scalars()
            assert set(views) == set(VIEW_NAMES)
    finally:
        engine.dispose()


def test_an_old_postgresql_schema_is_refused_with_78_until_db_upgrade(pg, fixture_site):
    url = pg.new_database()
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(
            text(
                "INSERT INTO articles (id, url, title, body_text, content_hash, first_seen_at,"
                " last_seen_at, changed_at) VALUES (7, 'https://responsiblestatecraft.org/old',"
                " 'An old post', 'Written before 0002.', 'h1', '2026-01-01T00:00:00Z',"
                " '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
            )
        )
    engine.dispose()
    shown = url.replace(pg.password, "***")
    fix = f"run `rsarchive db upgrade --db {shown}`"
    older = f"the archive schema is older than this rsarchive (0001 < {head_revision()}): {fix}"

    for argv in (["db", "current"], ["list"], ["show", "7"], ["stats"], ["export"]):
        proc = rsarchive(*argv, "--db", url)
        assert proc.returncode == 78, (argv, proc.stdout, proc.stderr)
        assert older in proc.stdout + proc.stderr, argv
        assert "Traceback" not in proc.stderr
    check = rsarchive("db", "check", "--db", url)
    assert check.returncode == 65 and f"PROBLEM {older}" in check.stdout
    with running_site(fixture_site) as server:
        crawl = crawl_into(url, server.url, [server.page_url("seed")])
        assert older in crawl.log and "(schema_error)" in crawl.log
        assert server.requests == []
    assert rows(url, "SELECT count(*) FROM crawl_runs") == [(0,)]

    upgraded = rsarchive("db", "upgrade", "--db", url)
    assert (upgraded.returncode, upgraded.stdout) == (
        0,
        f"upgraded the archive from schema 0001 to {head_revision()}: {shown}\n",
    ), upgraded.stderr
    _assert_schema_is_the_models(url)
    # The views the migrations made are the ones a new archive gets (views.py).
    fresh = pg.new_database()
    assert rsarchive("db", "upgrade", "--db", fresh).returncode == 0
    assert _view_definitions(url) == _view_definitions(fresh)
    show = rsarchive("show", "7", "--db", url)
    assert show.returncode == 0 and "An old post" in show.stdout, show.stderr
    assert rsarchive("db", "check", "--db", url).returncode == 0


def test_0009_moves_every_teaser_row_on_postgresql_and_back(pg):
    check_0009_round_trip(pg.new_database())


def _view_definitions(url: str) -> dict[str, str]:
    return dict(
        rows(
            url,
            "SELECT viewname, pg_get_viewdef(viewname::regclass) FROM pg_views"
            " WHERE schemaname = 'public'",
        )
    )


# -- query commands and views ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--json", "--limit", "100"],
        ["list", "--section", "QiOSK"],
        ["show", "{seed}", "--json"],
        ["show", "{seed}", "--format", "markdown"],
        ["teasers", "{seed}", "--json"],
        ["teasers", "{listing}"],
        ["authors", "--json"],
        ["sections"],
        ["tags", "--json"],
        ["export", "--format", "jsonl"],
        ["export", "--format", "csv"],
    ],
)
def test_query_commands_say_the_same_on_postgresql_as_on_sqlite(archives, argv):
    pages = {"seed": archives.urls[0], "listing": f"{archives.site}/tag/iran"}
    argv = [a.format(**pages) for a in argv]
    env_site = {"RSARCHIVE_SITE_URL": archives.site}
    on_sqlite, on_pg = (_run_with(env_site, *argv, "--db", db) for db in archives.both())
    assert on_pg.returncode == on_sqlite.returncode == 0, (on_pg.stderr, on_sqlite.stderr)
    assert _clock_free(on_pg.stdout) == _clock_free(on_sqlite.stdout)
    assert len(on_pg.stdout.splitlines()) >= 2


def _clock_free(out: str) -> str:
    """``out`` with the times the clock gave the two crawls (the fixture pages' are older)."""
    return re.sub(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ", _clock_time, out)


def _clock_time(match: re.Match[str]) -> str:
    return "<crawl time>" if match.group(0) >= CRAWLED_SINCE else match.group(0)


def _run_with(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", *argv],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_stats_on_postgresql_counts_what_sqlite_counts(archives):
    on_sqlite, on_pg = (
        json.loads(rsarchive("stats", "--json", "--db", db).stdout) for db in archives.both()
    )
    runs_pg, runs_sqlite = on_pg.pop("runs", None), on_sqlite.pop("runs", None)
    assert on_pg == on_sqlite
    assert [r["exit_code"] for r in runs_pg] == [r["exit_code"] for r in runs_sqlite] == [1]
    assert on_pg["totals"]["articles"] == 10


def test_search_is_sqlite_only_and_says_so_on_postgresql(archives):
    proc = rsarchive("search", "Iceland", "--db", archives.pg_url)
    assert proc.returncode == 78
    assert proc.stdout == ""
    assert proc.stderr == (
        "rsarchive search: full-text search needs the SQLite archive (articles_fts)\n"
    )


@pytest.mark.parametrize("view", VIEW_NAMES)
def test_views_give_the_same_rows_on_postgresql_as_on_sqlite(archives, view):
    on_sqlite, on_pg = (
        sorted((_view_row(r) for r in rows(db, f"SELECT * FROM {view}")), key=repr)
        for db in archives.both()
    )
    assert on_pg == on_sqlite
    assert on_pg


def _view_row(row: Row) -> tuple:
    out = []
    for key, value in row._mapping.items():
        # PostgreSQL numbers tags and authors apart: ON CONFLICT spends a sequence value.
        if key in CLOCK_COLUMNS or key in ("tag_id", "author_id"):
            continue
        # SQLite's json_group_array is JSON text; PostgreSQL's json_agg reads back as a list.
        if key.endswith("_json") and isinstance(value, str):
            value = json.loads(value)
        out.append((key, value))
    return tuple(out)


def test_capture_dictionaries_and_batched_replays_work_on_postgresql(pg, fixture_site):
    """Dictionary-compressed captures read back whole from bytea, and a replay on two processes
    commits in batches with a SAVEPOINT per page as on SQLite."""
    from test_codec import site_pages

    from rsarchive.archive import Archive
    from rsarchive.pipelines.replay import Capture, ReplayCounts, replay

    url = pg.new_database()
    pages = site_pages(fixture_site, 3)
    captures = [
        Capture(url=p.url, status=p.status, fetched_at=p.fetched_at, body=p.body,
                content_type=p.content_type, headers=json.dumps(p.headers))
        for p in pages
    ]  # fmt: skip
    with Archive(url, dictionary_after=10) as archive:
        run_id = archive.start_run("import", {})
        counts = replay(iter(captures), archive, run_id, ReplayCounts(), jobs=2)
        archive.finish_run(run_id, status="finished", finish_reason="finished", stats={})
        ids = [i for (i,) in rows(url, "SELECT id FROM captures ORDER BY id")]
        assert [archive.read_capture_body(i) for i in ids] == [p.body for p in pages]
    assert counts.pages_stored == len(pages)
    named = rows(url, "SELECT count(*) FROM captures WHERE dictionary_id IS NOT NULL")
    # The first ten too: compressed again with the first dictionary when it came.
    assert named == [(len(pages),)]
    # Compacted: every capture compressed again, each still reads back as received.
    compacted = rsarchive("db", "compact", "--db", url, "--level", "9")
    assert compacted.returncode == 0, compacted.stderr
    assert f"of {len(pages)} captures compressed again (zstd level 9" in compacted.stdout
    assert "run VACUUM to return the space to the system (PostgreSQL)" in compacted.stdout
    assert pg.password not in compacted.stdout
    with Archive(url) as archive:
        assert [archive.read_capture_body(i) for i in ids] == [p.body for p in pages]
