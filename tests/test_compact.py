"""`rsarchive db compact`: a smaller archive with the same content, never beside a crawl."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from conftest import rsarchive
from test_codec import site_pages

from rsarchive.archive import Archive
from rsarchive.archive.engine import PAGE_SIZE


@pytest.fixture
def archive_db(fixture_site, tmp_path) -> Path:
    """An archive of the fixture site's pages (twice over, at their own URLs), with a capture
    dictionary trained after ten of them."""
    db = tmp_path / "a.db"
    with Archive(f"sqlite:///{db}", dictionary_after=10) as archive:
        run_id = archive.start_run("article", {})
        for page in site_pages(fixture_site, 2):
            archive.store_page(page, run_id)
        archive.finish_run(run_id, status="finished", finish_reason="finished", stats={})
    return db


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """What the archive holds, apart from how its capture bodies are compressed."""
    with closing(sqlite3.connect(db)) as conn:
        captures = conn.execute(
            "SELECT id, url, sha256, size, fetched_at FROM captures ORDER BY id"
        ).fetchall()
        articles = conn.execute("SELECT * FROM articles ORDER BY id").fetchall()
        teasers = conn.execute("SELECT * FROM teasers ORDER BY id").fetchall()
        found = conn.execute(
            "SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'iran' ORDER BY rowid"
        ).fetchall()
    return {"captures": captures, "articles": articles, "teasers": teasers, "search": found}


def bodies(db: Path) -> list[tuple[str, int]]:
    """(sha256 of the body read back, stored bytes) of every capture."""
    with Archive(f"sqlite:///{db}") as archive, closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT id, length(body) FROM captures ORDER BY id").fetchall()
        return [
            (hashlib.sha256(archive.read_capture_body(i)).hexdigest(), stored) for i, stored in rows
        ]


def file_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def test_compact_makes_the_archive_smaller_and_keeps_every_byte(archive_db):
    before, stored_before, size_before = (
        snapshot(archive_db),
        bodies(archive_db),
        file_size(archive_db),
    )
    proc = rsarchive("db", "compact", "--db", str(archive_db), "--level", "12")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert "\n" not in line
    n = len(stored_before)
    assert re.fullmatch(
        rf"compacted {re.escape(str(archive_db))}: [\d.]+ KiB -> [\d.]+ KiB \(-\d+%\); "
        rf"\d+ of {n} captures compressed again \(zstd level 12, dictionary 1\): "
        r"[\d.]+ KiB -> [\d.]+ KiB; full-text index optimized; vacuumed",
        line,
    ), line
    after = bodies(archive_db)
    # Every body reads back as received (its sha256 is the one stored for it), none grew, and
    # together they take less room; nothing else changed.
    with closing(sqlite3.connect(archive_db)) as conn:
        stored_sha = [r[0] for r in conn.execute("SELECT sha256 FROM captures ORDER BY id")]
        named = {r[0] for r in conn.execute("SELECT DISTINCT dictionary_id FROM captures")}
    assert [sha for sha, _ in after] == [sha for sha, _ in stored_before] == stored_sha
    assert all(a <= b for (_, a), (_, b) in zip(after, stored_before, strict=True))
    assert sum(s for _, s in after) < sum(s for _, s in stored_before) * 0.9
    assert named == {1}
    assert snapshot(archive_db) == before
    assert file_size(archive_db) < size_before
    check = rsarchive("db", "check", "--db", str(archive_db))
    assert check.returncode == 0, check.stdout


def test_compact_gives_an_older_archive_the_page_size_of_a_new_one(archive_db):
    with closing(sqlite3.connect(archive_db, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA page_size=4096")
        conn.execute("VACUUM")
        conn.execute("PRAGMA journal_mode=WAL")
        assert conn.execute("PRAGMA page_size").fetchone() == (4096,)
    before = snapshot(archive_db)
    proc = rsarchive("db", "compact", "--db", str(archive_db))
    assert proc.returncode == 0, proc.stderr
    assert f"vacuumed (pages of 4096 -> {PAGE_SIZE} bytes)" in proc.stdout
    with closing(sqlite3.connect(archive_db)) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert snapshot(archive_db) == before


def test_compact_refuses_while_a_crawl_writes_to_the_archive(archive_db):
    # A run in progress, by a process that lives (this one).
    with closing(sqlite3.connect(archive_db)) as conn:
        conn.execute(
            "INSERT INTO crawl_runs (spider, started_at, status, pid) "
            "VALUES ('feed', '2026-12-07T03:00:00Z', 'running', ?)",
            (os.getpid(),),
        )
        conn.commit()
    stored = bodies(archive_db)
    proc = rsarchive("db", "compact", "--db", str(archive_db))
    assert proc.returncode == 75, proc.stdout + proc.stderr
    assert proc.stderr.strip().endswith(
        f"a crawl is writing to the archive (run 2, feed, pid {os.getpid()}): "
        "compact it when no crawl runs"
    )
    assert "Traceback" not in proc.stderr
    assert bodies(archive_db) == stored  # untouched


def test_compact_says_try_later_when_another_process_holds_the_write_lock(archive_db):
    holder = sqlite3.connect(archive_db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        proc = rsarchive("db", "compact", "--db", f"sqlite:///{archive_db}?timeout=0.5")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 75, proc.stdout + proc.stderr
    assert "the archive is busy (another process holds its write lock)" in proc.stderr
    assert "try again later" in proc.stderr and "Traceback" not in proc.stderr


def test_compact_on_a_missing_archive_or_a_bad_level(tmp_path, archive_db):
    missing = rsarchive("db", "compact", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 74 and "no archive database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    bad = rsarchive("db", "compact", "--db", str(archive_db), "--level", "30")
    assert bad.returncode == 64
    assert "argument --level: a zstd level is 1 to 22, not 30" in bad.stderr


def test_the_next_compact_starts_after_the_captures_the_last_one_did(archive_db, fixture_site):
    def run(*args: str) -> str:
        proc = rsarchive("db", "compact", "--db", str(archive_db), "--level", "9", *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    first = run()
    n = len(bodies(archive_db))
    assert f"of {n} captures compressed again (zstd level 9, dictionary 1)" in first
    assert f"no capture to compress again ({n} done by an earlier compact)" in run()
    # A later crawl stored more pages: the next compact looks at those only.
    with Archive(f"sqlite:///{archive_db}") as archive:
        for page in site_pages(fixture_site, 3)[-5:]:
            archive.store_page(page)
    third = run()
    assert "of 5 captures compressed again (zstd level 9, dictionary 1): " in third
    assert f"({n} done by an earlier compact)" in third
    # A higher level than the last compact's, or --all, looks at every capture again.
    assert f"of {n + 5} captures compressed again (zstd level 10" in run("--level", "10")
    assert f"of {n + 5} captures compressed again (zstd level 9" in run("--all")
    with closing(sqlite3.connect(archive_db)) as conn:
        runs = conn.execute(
            "SELECT status, exit_code, json_extract(stats, '$.last_capture_id') FROM crawl_runs"
            " WHERE spider = 'compact' ORDER BY id"
        ).fetchall()
    assert [r[:2] for r in runs] == [("finished", 0)] * 5
    assert runs[-1][2] == n + 5
