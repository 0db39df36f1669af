"""The crawl's writer thread: pages that queue up share a commit, and each is still stored whole
or not at all, and done only once committed."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from test_archive import make_article, make_page, make_teaser

from rsarchive.archive import Archive
from rsarchive.pipelines.writer import GroupWriter


@pytest.fixture
def setup(tmp_path: Path):
    db = tmp_path / "a.db"
    archive = Archive(f"sqlite:///{db}")
    writer = GroupWriter()
    writer.archive = archive
    yield archive, writer, db
    writer.shutdown()
    archive.close()


def hold(writer: GroupWriter) -> threading.Event:
    """Keep the writer busy until the event is set, so that the next jobs queue up."""
    release, busy = threading.Event(), threading.Event()

    def wait() -> None:
        busy.set()
        assert release.wait(30)

    writer.submit(wait)
    assert busy.wait(30)
    return release


def articles(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT url FROM articles ORDER BY url")]


def count_commits(archive: Archive) -> list[int]:
    commits = [0]
    raw = archive._writer_connection().connection.driver_connection
    raw.set_trace_callback(lambda sql: commits.__setitem__(0, commits[0] + (sql == "COMMIT")))
    return commits


def test_pages_that_queue_up_share_one_commit_and_are_done_once_committed(setup):
    archive, writer, db = setup
    commits = count_commits(archive)
    release = hold(writer)
    pages = [make_page(make_article(f"deal-{i}")) for i in range(5)]
    futures = [writer.submit_page(archive.store_page, page) for page in pages]
    assert not any(f.done() for f in futures)
    release.set()
    results = [f.result(30) for f in futures]
    assert [r.article_status for r in results] == ["new"] * 5
    assert commits == [1] and writer.page_commits == 1
    # Done means committed: another connection sees every page.
    assert len(articles(db)) == 5
    # An idle writer commits a lone page at once.
    writer.submit_page(archive.store_page, make_page(make_article("alone"))).result(30)
    assert commits == [2] and len(articles(db)) == 6
    assert writer.page_commits == 2  # what a crawl's stats say (rsarchive/page_commits)


def test_a_page_that_fails_in_a_shared_commit_is_the_only_one_lost(setup, monkeypatch):
    archive, writer, db = setup
    store_teasers = archive._store_teasers

    def broken(run, page_url, *args):
        if "broken" in page_url:  # after its capture and article rows: all rolled back
            raise RuntimeError("bug while storing")
        return store_teasers(run, page_url, *args)

    monkeypatch.setattr(archive, "_store_teasers", broken)
    release = hold(writer)
    futures = [
        writer.submit_page(archive.store_page, make_page(make_article(slug), [make_teaser("t")]))
        for slug in ("first", "broken", "last")
    ]
    release.set()
    assert futures[0].result(30).article_status == futures[2].result(30).article_status == "new"
    with pytest.raises(RuntimeError, match="bug while storing"):
        futures[1].result(30)
    assert [u.rsplit("/", 1)[1] for u in articles(db)] == ["first", "last"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM captures").fetchone() == (2,)


def test_when_the_database_ends_the_transaction_the_pages_in_it_fail_too(setup):
    archive, writer, db = setup
    release = hold(writer)

    def full_disk(page):
        archive.store_page(page)
        # What SQLite does on SQLITE_FULL or an I/O error: the whole transaction is gone.
        archive._writer_connection().connection.driver_connection.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    before = writer.submit_page(archive.store_page, make_page(make_article("before")))
    failing = writer.submit_page(full_disk, make_page(make_article("failing")))
    after = writer.submit_page(archive.store_page, make_page(make_article("after")))
    release.set()
    for future in (before, failing):
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            future.result(30)
    # The page after it got a transaction of its own.
    assert after.result(30).article_status == "new"
    assert [u.rsplit("/", 1)[1] for u in articles(db)] == ["after"]


def test_other_writes_wait_for_the_pages_before_them_to_commit(setup):
    archive, writer, db = setup
    release = hold(writer)
    page = writer.submit_page(archive.store_page, make_page(make_article("page")))
    seen = writer.submit(articles, db)  # another connection, after the page's commit
    release.set()
    page.result(30)
    assert len(seen.result(30)) == 1
