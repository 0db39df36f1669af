"""Re-reads on several cores: `reparse --jobs N` gives what one core gives, row for row."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import rsarchive, scrapy_crawl

from rsarchive.archive import Archive
from rsarchive.pipelines.replay import Capture, ReplayCounts, read_all, replay

SEED_PATH = "/2021/05/19/blinken-lavrov-iceland/"
# Columns an in-place re-read dates "now" (and the run rows' own bookkeeping).
_NOW = {
    "last_seen_at", "changed_at", "last_attempt_at", "last_success_at",
    "started_at", "finished_at", "pid", "stats",
}  # fmt: skip


def every_row(db: Path, ignore: frozenset[str] | set[str] = frozenset()) -> dict[str, list]:
    """Every row of every table (the full-text index included), in rowid order, ids and all."""
    out: dict[str, list] = {}
    with sqlite3.connect(db) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " AND name NOT LIKE 'articles_fts_%' ORDER BY name"
            )
        ]
        for table in tables:
            cursor = conn.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid")
            keep = [i for i, d in enumerate(cursor.description) if d[0] not in ignore]
            out[table] = [tuple(row[i] for i in keep) for row in cursor]
    return out


@pytest.fixture
def crawled(site_server, tmp_path) -> Path:
    """Every fixture page, then the seed again, edited: two captures and two revisions of it."""
    db = tmp_path / "crawled.db"
    urls = ",".join(site_server.page_url(p.name) for p in site_server.site.pages.values())
    first = scrapy_crawl("article", db, site_server.url, "-a", f"urls={urls}")
    assert first.returncode == 0, first.log
    status, headers, body = site_server.site.respond(SEED_PATH, origin=site_server.url)
    edited = body.replace(b"amicable in tone", b"frosty and guarded in tone")
    site_server.overrides[SEED_PATH] = (status, headers, edited)
    seed = site_server.page_url("seed")
    second = scrapy_crawl("article", db, site_server.url, "-a", f"url={seed}")
    assert second.returncode == 0, second.log
    assert first.rows("SELECT count(*) FROM revisions")[0][0] > 10
    return db


def test_reparse_into_a_new_archive_on_two_processes_gives_the_rows_of_one(crawled, tmp_path):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    for target, jobs in ((one, "1"), (two, "2")):
        proc = rsarchive("reparse", "--db", str(crawled), "--into", str(target), "--jobs", jobs)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("re-parsed 21 captures"), proc.stdout
    rows_one = every_row(one, {"started_at", "finished_at", "pid"})
    rows_two = every_row(two, {"started_at", "finished_at", "pid"})
    assert rows_one["revisions"] and rows_one["articles_fts"] and rows_one["captures"]
    for table in rows_one:
        assert rows_two[table] == rows_one[table], table
    # The seed's two versions keep their order: the edit is the later revision.
    with sqlite3.connect(two) as conn:
        bodies = conn.execute(
            "SELECT coalesce(r.body_text, a.body_text) FROM revisions r"
            " JOIN articles a ON a.id = r.article_id"
            " WHERE a.url LIKE '%blinken-lavrov-iceland' ORDER BY r.id"
        ).fetchall()
    assert ["frosty" in body for (body,) in bodies] == [False, True]


def test_reparse_in_place_on_two_processes_changes_what_one_changes(crawled, tmp_path):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    shutil.copy(crawled, one)
    shutil.copy(crawled, two)
    for db, jobs in ((one, "1"), (two, "2")):
        proc = rsarchive("reparse", "--db", str(db), "--jobs", jobs)
        assert proc.returncode == 0, proc.stderr
        assert "0 new, 0 changed, 0 updated, 10 unchanged" in proc.stdout, proc.stdout
    assert every_row(two, _NOW) == every_row(one, _NOW)


@pytest.mark.parametrize("jobs", ["0", "-2", "many"])
def test_reparse_jobs_must_be_a_whole_number_of_processes(tmp_path, jobs):
    proc = rsarchive("reparse", "--db", str(tmp_path / "a.db"), "--jobs", jobs)
    assert proc.returncode == 64
    assert "--jobs: must be a whole number of processes, 1 to 1024" in proc.stderr


def _fixture_captures(fixture_site, copies: int) -> list[Capture]:
    """Every fixture page (404s and all), ``copies`` times, as captures fetched one after the
    other."""
    captures = []
    for copy in range(copies):
        for page in fixture_site.pages.values():
            status, headers, body = fixture_site.respond(page.url)
            captures.append(
                Capture(
                    url=page.url,
                    status=status,
                    fetched_at=f"2026-11-25T12:{copy:02d}:{len(captures) % 60:02d}Z",
                    body=body,
                    content_type=headers.get("Content-Type"),
                    headers=json.dumps(headers),
                )
            )
    return captures


def _summary(reads) -> list[tuple]:
    return [(r.item.url if r.item else None, r.dropped, r.stats) for r in reads]


def test_workers_give_back_the_captures_in_their_order_with_what_each_read(fixture_site):
    captures = _fixture_captures(fixture_site, 3)
    one = _summary(read_all(captures, 1))
    assert _summary(read_all(captures, 2)) == one
    # In order: each read is its own capture's page.
    assert [url for url, _, _ in one] == [
        None if dropped else c.url for c, (_, dropped, _) in zip(captures, one, strict=True)
    ]
    assert [d for _, d, _ in one].count("http_404") == 3


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_replay_stores_what_it_reads_and_counts_what_it_skips(fixture_site, tmp_path, jobs):
    captures = _fixture_captures(fixture_site, 2)
    with Archive(f"sqlite:///{tmp_path}/a.db") as archive:
        run_id = archive.start_run("import", {})
        counts = replay(iter(captures), archive, run_id, ReplayCounts(), jobs=jobs)
        archive.finish_run(run_id, status="finished", finish_reason="finished", stats={})
        with archive.reader() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM captures").scalar()
            seen = conn.exec_driver_sql("SELECT min(first_seen_at) FROM articles").scalar()
    assert counts.captures == len(captures)
    # The fixture site's 404 page and its page without a headline, once a copy.
    assert counts.dropped == {"http_404": 2, "no_headline": 2}
    assert counts.pages_stored == len(captures) - 4
    assert counts.articles == {"new": 10, "unchanged": 10}
    assert stored == counts.pages_stored // 2  # the same bodies again add no capture
    assert seen == captures[0].fetched_at  # dated by the captures (keep_times)
