"""Schema migrations: the frozen baseline, upgrades, the start-up check, `rsarchive db ...`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from conftest import ROOT, rsarchive, scrapy_crawl

from rsarchive.archive import Archive, SchemaError, check_schema, make_engine
from rsarchive.archive.models import metadata
from rsarchive.archive.schema import alembic_config, head_revision, include_name, upgrade

ISSUE2_SCHEMA = ROOT / "tests" / "data" / "issue2_schema.sql"


def issue2_database(path: Path) -> Path:
    """A database as issue-2 rsarchive left it: its DDL, one archived article, no version."""
    with sqlite3.connect(path) as conn:
        conn.executescript(ISSUE2_SCHEMA.read_text(encoding="utf-8"))
        conn.execute(
            "INSERT INTO articles (id, url, title, body_text, content_hash, first_seen_at,"
            " last_seen_at, changed_at) VALUES (7, 'https://responsiblestatecraft.org/old-post',"
            " 'An old post', 'Written before migrations.', 'h1', '2026-01-01T00:00:00Z',"
            " '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
        )
        conn.execute(
            "INSERT INTO revisions (article_id, captured_at, content_hash, title, body_text)"
            " VALUES (7, '2026-01-01T00:00:00Z', 'h1', 'An old post', 'Written before migrations.')"
        )
    return path


def sqlite_objects(path: Path) -> dict[str, object]:
    """What a schema is made of: columns, indexes, foreign keys, and the FTS DDL verbatim."""
    with sqlite3.connect(path) as conn:
        out: dict[str, object] = {}
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master"
            " WHERE name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
        ):
            if kind == "table" and not name.startswith("articles_fts"):
                out[name] = (
                    [r[1:] for r in conn.execute(f"PRAGMA table_info({name})")],
                    sorted(r[2:] for r in conn.execute(f"PRAGMA foreign_key_list({name})")),
                    sorted(
                        (r[1], r[2], [c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})")])
                        for r in conn.execute(f"PRAGMA index_list({name})")
                    ),
                )
            elif kind != "index" or sql is None:
                out[f"{kind} {name}"] = sql  # FTS tables and triggers: the DDL itself
    return out


def test_migration_0001_is_exactly_the_schema_issue_2_created(tmp_path):
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.executescript(ISSUE2_SCHEMA.read_text(encoding="utf-8"))
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    with engine.connect() as conn:  # the comparison used below sees what 0002 adds
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        added = {
            diff[3].name for diff in compare_metadata(context, metadata) if diff[0] == "add_column"
        }
        assert "parser_version" in added
    engine.dispose()
    sql = "SELECT type, name, sql FROM sqlite_master WHERE tbl_name != 'alembic_version' ORDER BY 2"
    with sqlite3.connect(old) as a, sqlite3.connect(tmp_path / "m.db") as b:
        assert a.execute(sql).fetchall() == b.execute(sql).fetchall()


def test_an_upgraded_issue2_database_has_the_schema_of_a_fresh_one_and_keeps_its_rows(tmp_path):
    old = issue2_database(tmp_path / "old.db")
    engine = make_engine(f"sqlite:///{old}")
    assert upgrade(engine) == ("0001", head_revision())
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert compare_metadata(context, metadata) == []
        assert conn.exec_driver_sql("SELECT title, parser_version FROM articles").all() == [
            ("An old post", None)
        ]
        fts = "SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'migrations'"
        assert conn.exec_driver_sql(fts).all() == [(7,)]
    engine.dispose()
    Archive(f"sqlite:///{tmp_path / 'fresh.db'}").close()
    assert sqlite_objects(old) == sqlite_objects(tmp_path / "fresh.db")


def test_0006_rewrites_joined_teaser_bylines_as_json_lists(tmp_path):
    """Teasers stored before 0006 held their byline as "A, B": `db upgrade` makes it a JSON
    list, as every other authors field is, and the readers give a list either way."""
    db = tmp_path / "a.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # an archive as schema 0005 left it
        command.upgrade(alembic_config(conn), "0005")
    engine.dispose()
    with sqlite3.connect(db) as conn:
        rows = [("Mara Ellison, Daniel K. Osei", "/a"), ("José Martí-Ruiz", "/b"), ("", "/c")]
        conn.executemany(
            "INSERT INTO teasers (page_url, position, url, title, authors, has_more, first_seen_at,"
            " last_seen_at) VALUES ('https://x.org/p', 0, 'https://x.org' || ?2, 'T', ?1, 0,"
            " '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')",
            rows,
        )
    proc = rsarchive("db", "upgrade", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"upgraded the archive from schema 0005 to {head_revision()}")
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT authors FROM teasers ORDER BY url").fetchall()
    assert [json.loads(a) for (a,) in stored] == [
        ["Mara Ellison", "Daniel K. Osei"],
        ["José Martí-Ruiz"],
        [],
    ]
    teasers = rsarchive("teasers", "https://x.org/p", "--json", "--db", str(db))
    assert teasers.returncode == 0, teasers.stderr
    by_url = {row["url"]: row for row in map(json.loads, teasers.stdout.splitlines())}
    assert by_url["https://x.org/a"]["authors"] == ["Mara Ellison", "Daniel K. Osei"]
    assert by_url["https://x.org/a"]["position"] == 1  # counted from 1 for people


def test_a_fresh_archive_is_created_at_the_current_version(tmp_path):
    db = tmp_path / "new.db"
    proc = rsarchive("db", "upgrade", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"created a new archive at schema {head_revision()}: {db}\n"
    again = rsarchive("db", "upgrade", "--db", str(db))
    assert again.stdout.startswith(f"the archive is up to date (schema {head_revision()})")
    current = rsarchive("db", "current", "--db", str(db))
    assert (current.returncode, current.stdout) == (0, f"schema {head_revision()} (up to date)\n")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]


def test_an_old_schema_stops_crawl_and_commands_until_db_upgrade(site_server, tmp_path):
    db = issue2_database(tmp_path / "old.db")
    url = site_server.page_url("seed")
    fix = f"run `rsarchive db upgrade --db {db}`"

    crawl = scrapy_crawl("article", db, site_server.url, "-a", f"url={url}")
    older = f"the archive schema is older than this rsarchive (0001 < {head_revision()}): {fix}"
    assert older in crawl.log
    assert "(schema_error)" in crawl.log and "'rsarchive/schema_error'" in crawl.log
    assert "Traceback" not in crawl.log
    assert site_server.requests == []  # not even robots.txt

    for argv in (
        ["history", "7"],
        ["diff", "7"],
        ["reparse"],
        ["db", "current"],
        ["search", "migrations"],
        ["show", "7"],
        ["list"],
        ["teasers", url],
        ["stats"],
        ["export", "--format", "csv"],
        ["serve", "--port", "0"],
        ["crawl", "article", "-a", f"url={url}", "-s", f"RSARCHIVE_SITE_URL={site_server.url}"],
    ):
        proc = rsarchive(*argv, "--db", str(db))
        assert proc.returncode == 78, (argv, proc.stdout, proc.stderr)
        assert fix in proc.stderr + proc.stdout, argv
        assert "Traceback" not in proc.stderr
    assert site_server.requests == []  # `rsarchive crawl` stopped before any request too
    check = rsarchive("db", "check", "--db", str(db))
    assert check.returncode == 65
    assert f"PROBLEM {older}" in check.stdout
    with sqlite3.connect(db) as conn:  # nothing was written by the refused runs
        assert conn.execute("SELECT count(*) FROM crawl_runs").fetchone() == (0,)

    upgraded = rsarchive("db", "upgrade", "--db", str(db))
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == f"upgraded the archive from schema 0001 to {head_revision()}: {db}\n"
    crawl = scrapy_crawl("article", db, site_server.url, "-a", f"url={url}")
    assert crawl.returncode == 0 and "schema_error" not in crawl.log
    assert crawl.rows("SELECT count(*) FROM articles") == [(2,)], crawl.log[-3000:]
    history = rsarchive("history", "7", "--db", str(db))
    assert history.returncode == 0 and "An old post" in history.stdout
    assert rsarchive("db", "check", "--db", str(db)).returncode == 0


def test_a_schema_newer_than_the_code_asks_to_upgrade_rsarchive(tmp_path):
    db = tmp_path / "new.db"
    Archive(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    engine = make_engine(f"sqlite:///{db}")
    with pytest.raises(
        SchemaError, match=rf"newer than this rsarchive \(0099 > {head_revision()}\)"
    ):
        check_schema(engine)
    engine.dispose()
    for argv in (["history", "1"], ["db", "upgrade"]):
        proc = rsarchive(*argv, "--db", str(db))
        assert proc.returncode == 78
        assert proc.stderr.rstrip().endswith("upgrade rsarchive")


# -- db check ------------------------------------------------------------------------------


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    db = tmp_path / "demo.db"
    proc = rsarchive("demo", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    return db


def test_db_check_passes_on_a_crawled_archive(demo_db):
    proc = rsarchive("db", "check", "--db", str(demo_db))
    assert (proc.returncode, proc.stdout) == (
        0,
        f"{demo_db}: ok (integrity, full-text index, no orphan rows, schema up to date)\n",
    )


def test_db_check_reports_a_full_text_index_out_of_step(demo_db):
    with sqlite3.connect(demo_db) as conn:
        # An index entry for an article that does not exist, and one article's terms gone.
        conn.execute(
            "INSERT INTO articles_fts(rowid, title, subtitle, body_text) VALUES (999, 'x', '', 'y')"
        )
        conn.execute(
            "INSERT INTO articles_fts(articles_fts, rowid, title, subtitle, body_text)"
            " SELECT 'delete', id, title, subtitle, body_text FROM articles WHERE id = 1"
        )
    proc = rsarchive("db", "check", "--db", str(demo_db))
    assert proc.returncode == 65
    assert "PROBLEM full-text index articles_fts does not match articles" in proc.stdout
    assert "VALUES ('rebuild')" in proc.stdout


def test_db_check_reports_a_corrupted_full_text_index_shadow_table(demo_db):
    with sqlite3.connect(demo_db) as conn:
        conn.execute("DELETE FROM articles_fts_data WHERE id > 10")
    proc = rsarchive("db", "check", "--db", str(demo_db))
    assert proc.returncode == 65
    assert "PROBLEM full-text index articles_fts does not match articles" in proc.stdout


def test_db_check_reports_orphan_rows_and_missing_triggers(demo_db):
    with sqlite3.connect(demo_db) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        (article_id,) = conn.execute(
            "SELECT article_id FROM article_authors GROUP BY article_id HAVING count(*) = 2"
        ).fetchone()
        conn.execute("DELETE FROM articles WHERE id = ?", (article_id,))
        conn.execute("DROP TRIGGER articles_fts_au")
    proc = rsarchive("db", "check", "--db", str(demo_db))
    assert proc.returncode == 65
    lines = proc.stdout.splitlines()
    assert "PROBLEM orphan rows: 2 in article_authors.article_id point to no articles row" in lines
    assert "PROBLEM orphan rows: 1 in revisions.article_id point to no articles row" in lines
    assert "PROBLEM full-text index trigger missing: articles_fts_au" in lines


def test_reading_commands_on_a_missing_file_do_not_create_it(tmp_path):
    missing = tmp_path / "nope.db"
    for argv in (["db", "check"], ["db", "current"], ["history", "1"], ["reparse"]):
        proc = rsarchive(*argv, "--db", str(missing))
        assert proc.returncode == 74
        assert proc.stderr == f"rsarchive {argv[0]}: no archive database at {missing}\n"
    assert not missing.exists()


def test_opening_an_archive_never_waits_for_the_write_lock_of_a_running_crawl(demo_db):
    crawl = sqlite3.connect(demo_db, isolation_level=None)
    crawl.execute("BEGIN IMMEDIATE")  # a crawl in the middle of storing a page
    try:
        with Archive(f"sqlite:///{demo_db}") as archive:  # the schema check only reads
            assert len(archive.list_articles()) == 10
        proc = rsarchive("db", "current", "--db", str(demo_db))
        assert proc.returncode == 0, proc.stderr
    finally:
        crawl.execute("ROLLBACK")
        crawl.close()


def test_a_downgrade_to_0001_gives_back_the_issue2_schema(tmp_path):
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.executescript(ISSUE2_SCHEMA.read_text(encoding="utf-8"))
    Archive(f"sqlite:///{tmp_path / 'new.db'}").close()
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    engine.dispose()
    sql = "SELECT type, name, sql FROM sqlite_master WHERE tbl_name != 'alembic_version' ORDER BY 2"
    with sqlite3.connect(old) as a, sqlite3.connect(tmp_path / "new.db") as b:
        assert a.execute(sql).fetchall() == b.execute(sql).fetchall()


# -- 0009: teaser contents stored once ------------------------------------------------------------

# Teaser rows as schema 0007 stored them: one target seen on three pages (twice with the same
# content, once after its excerpt changed) and one with every optional field empty.
TEASERS_0007 = [
    (1, "https://x.org/a", 7, 0, "https://x.org/t", 7, "11", "T", "Europe", '["A, Jr."]',
     "2024-01-01T00:00:00Z", "Jan 1", "Old excerpt", True, "https://x.org/i.jpg", "Cap",
     "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"),
    (2, "https://x.org/b", None, 3, "https://x.org/t", 7, "11", "T", "Europe", '["A, Jr."]',
     "2024-01-01T00:00:00Z", "Jan 1", "Old excerpt", True, "https://x.org/i.jpg", "Cap",
     "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z"),
    (4, "https://x.org/c", None, 1, "https://x.org/t", 7, "11", "T", "Europe", '["A, Jr."]',
     "2024-01-01T00:00:00Z", "Jan 1", "New excerpt", True, "https://x.org/i.jpg", "Cap",
     "2024-01-04T00:00:00Z", "2024-01-04T00:00:00Z"),
    (5, "https://x.org/a", 7, 1, "https://x.org/u", None, None, "U", None, "[]",
     None, None, None, False, None, None, "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z"),
]  # fmt: skip
TEASER_COLUMNS = (
    "id, page_url, page_article_id, position, url, article_id, post_id, title, section, authors,"
    " published_at, published_at_raw, excerpt, has_more, image_url, image_caption,"
    " first_seen_at, last_seen_at"
)


def fill_0007_teasers(conn) -> None:
    """An article and ``TEASERS_0007`` in an archive at schema 0007 or 0008 (``conn``:
    SQLAlchemy), whose teasers table is the one before 0009."""
    from sqlalchemy import text

    conn.execute(
        text(
            "INSERT INTO articles (id, url, title, content_hash, first_seen_at, last_seen_at,"
            " changed_at) VALUES (7, 'https://x.org/a', 'A', 'h', '2024-01-01T00:00:00Z',"
            " '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')"
        )
    )
    names = [c.strip() for c in TEASER_COLUMNS.split(",")]
    conn.execute(
        text(
            f"INSERT INTO teasers ({TEASER_COLUMNS}) VALUES ({', '.join(':' + n for n in names)})"
        ),
        [dict(zip(names, row, strict=True)) for row in TEASERS_0007],
    )


def read_teasers(conn) -> list[tuple]:
    from sqlalchemy import text

    rows = conn.execute(text(f"SELECT {TEASER_COLUMNS} FROM teasers ORDER BY id")).all()
    return [(*row[:13], bool(row[13]), *row[14:]) for row in rows]


def check_0009_round_trip(url: str) -> None:
    """0008 -> 0009 keeps every teaser row as it was (ids too), each content stored once; new
    sightings get new ids; 0009 -> 0008 gives the table back with the same rows."""
    from sqlalchemy import text

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0008")
            fill_0007_teasers(conn)
        assert upgrade(engine) == ("0008", head_revision())
        with engine.begin() as conn:
            assert read_teasers(conn) == [tuple(row) for row in TEASERS_0007]
            # One content per distinct content: the first two sightings share theirs.
            assert conn.scalar(text("SELECT count(*) FROM teaser_contents")) == 3
            ids = conn.execute(text("SELECT id, content_id FROM teaser_sightings ORDER BY id"))
            by_id = dict(ids.all())
            assert by_id[1] == by_id[2] != by_id[4]
            # The next sighting is numbered after the moved ones (PostgreSQL's sequence too).
            new_id = conn.execute(
                text(
                    "INSERT INTO teaser_sightings (page_url, position, url, content_id,"
                    " first_seen_at, last_seen_at) VALUES ('https://x.org/d', 0, 'https://x.org/t',"
                    " :content, '2024-02-01T00:00:00Z', '2024-02-01T00:00:00Z') RETURNING id"
                ),
                {"content": by_id[4]},
            ).scalar()
            assert new_id == 6
            # Views that read teasers still do.
            counts = conn.execute(text("SELECT teaser_count, teased_count FROM article_list"))
            assert counts.all() == [(2, 3)]
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0008")
        with engine.begin() as conn:
            back = read_teasers(conn)
            assert back[:4] == [tuple(row) for row in TEASERS_0007]
            assert back[4][:6] == (6, "https://x.org/d", None, 0, "https://x.org/t", None)
            assert conn.scalar(text("SELECT teaser_count FROM article_list")) == 2
    finally:
        engine.dispose()


def test_0009_stores_each_teaser_content_once_and_keeps_every_row(tmp_path):
    check_0009_round_trip(f"sqlite:///{tmp_path / 'a.db'}")
    # Downgraded, the schema is 0008's: what a fresh archive at 0008 has.
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0008")
    engine.dispose()
    assert sqlite_objects(tmp_path / "a.db") == sqlite_objects(tmp_path / "fresh.db")
