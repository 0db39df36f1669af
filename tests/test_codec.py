"""Captures compressed with zstd dictionaries trained on the archive's own pages."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from rsarchive.archive import Archive
from rsarchive.archive.codec import MissingDictionary, compress_body, decompress_body
from rsarchive.items import FeedPage, Page


def site_pages(fixture_site, copies: int) -> list[Page]:
    """The fixture site's 200 pages, ``copies`` times, each copy at its own URL with its own
    bytes (as the pages of one site differ)."""
    pages = []
    for copy in range(copies):
        for page in fixture_site.pages.values():
            status, headers, body = fixture_site.respond(page.url)
            if status != 200:
                continue
            url = f"{page.url.rstrip('/')}-{copy}/"
            pages.append(
                Page(
                    url=url,
                    status=200,
                    fetched_at=f"2026-11-25T12:{copy:02d}:00Z",
                    content_type=headers["Content-Type"],
                    headers=headers,
                    body=body.replace(b"</title>", f" ({copy})</title>".encode(), 1),
                )
            )
    return pages


def captures(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT id, sha256, size, length(body), dictionary_id FROM captures ORDER BY id"
        ).fetchall()


def test_pages_after_the_first_ones_are_compressed_with_a_dictionary_and_read_back_whole(
    fixture_site, tmp_path
):
    db = tmp_path / "a.db"
    pages = site_pages(fixture_site, 4)
    with Archive(f"sqlite:///{db}", dictionary_after=10) as archive:
        ids = [archive.store_page(page).capture_id for page in pages]
        # A load-more answer (JSON) is no page: compressed alone.
        feed = FeedPage(url=f"{pages[0].url}feed", page_url=pages[0].url,
                        fetched_at="2026-11-25T13:00:00Z", body=b'{"posts": []}')  # fmt: skip
        feed_id = archive.store_feed_page(feed).capture_id
        # Every capture gives back exactly the bytes received, with or without a dictionary.
        for page, capture_id in zip(pages, ids, strict=True):
            assert archive.read_capture_body(capture_id) == page.body
        assert archive.read_capture_body(feed_id) == feed.body

    rows = captures(db)
    with sqlite3.connect(db) as conn:
        dictionaries = conn.execute(
            "SELECT id, samples, last_capture_id, length(dictionary) FROM capture_dictionaries"
        ).fetchall()
    assert [(i, samples, last) for i, samples, last, _ in dictionaries] == [(1, 10, 10)]
    # The ten pages stored before it (compressed alone) were compressed again with it.
    assert [r[4] for r in rows] == [1] * len(pages) + [None]
    for (_, sha256, size, _, _), page in zip(rows, pages, strict=False):
        assert sha256 == hashlib.sha256(page.body).hexdigest() and size == len(page.body)
    alone = sum(len(compress_body(page.body)[0]) for page in pages) / len(pages)
    first, later = (sum(r[3] for r in part) / len(part) for part in (rows[:10], rows[10:-1]))
    assert first < alone * 2 / 3 and later < alone * 2 / 3  # ~0.53 on these pages


def test_the_next_dictionary_comes_as_the_archive_grows_and_old_captures_stay_readable(
    fixture_site, tmp_path
):
    db = tmp_path / "a.db"
    pages = site_pages(fixture_site, 12)
    with Archive(f"sqlite:///{db}", dictionary_after=10) as archive:
        first = [archive.store_page(page).capture_id for page in pages[:40]]
    # Reopened (a later crawl): the archive remembers where its dictionaries stand.
    with Archive(f"sqlite:///{db}", dictionary_after=10) as archive:
        later = [archive.store_page(page).capture_id for page in pages[40:]]
        for page, capture_id in zip(pages, first + later, strict=True):
            assert archive.read_capture_body(capture_id) == page.body
    named = [r[4] for r in captures(db)]
    # Trained after 10 pages, then after 7 x 10 = 70 more: versions 1 and 2.
    assert len(named) == 144
    assert set(named[:80]) == {1}  # the first ten too, compressed again once it came
    assert set(named[80:]) == {2}


def test_a_dictionary_compressed_body_is_refused_without_its_dictionary(fixture_site, tmp_path):
    db = tmp_path / "a.db"
    with Archive(f"sqlite:///{db}", dictionary_after=10) as archive:
        for page in site_pages(fixture_site, 1):
            archive.store_page(page)
    with sqlite3.connect(db) as conn:
        body, compression = conn.execute(
            "SELECT body, compression FROM captures WHERE dictionary_id IS NOT NULL"
        ).fetchone()
    with pytest.raises(MissingDictionary, match="compressed with a dictionary"):
        decompress_body(body, compression)


def test_reparse_into_a_new_archive_rebuilds_from_dictionary_compressed_captures(
    fixture_site, tmp_path
):
    from rsarchive.pipelines.reparse import reparse

    source, target = tmp_path / "s.db", tmp_path / "t.db"
    pages = site_pages(fixture_site, 2)
    with Archive(f"sqlite:///{source}", dictionary_after=5) as archive:
        for page in pages:
            archive.store_page(page)
    with Archive(f"sqlite:///{source}") as src, Archive(f"sqlite:///{target}") as dst:
        result = reparse(src, dst, jobs=1)
        assert result.captures == len(pages)
    # The same bodies (by their hashes and sizes), each stored once.
    assert [r[1:3] for r in captures(target)] == [r[1:3] for r in captures(source)]


def test_db_check_finds_captures_whose_dictionary_is_missing(fixture_site, tmp_path):
    from conftest import rsarchive

    db = tmp_path / "a.db"
    with Archive(f"sqlite:///{db}", dictionary_after=10) as archive:
        for page in site_pages(fixture_site, 2):
            archive.store_page(page)
    assert rsarchive("db", "check", "--db", str(db)).returncode == 0
    with sqlite3.connect(db) as conn:
        named = conn.execute("SELECT count(*) FROM captures WHERE dictionary_id = 1").fetchone()[0]
        conn.execute("DELETE FROM capture_dictionaries")
    proc = rsarchive("db", "check", "--db", str(db))
    assert proc.returncode == 65
    assert (
        f"orphan rows: {named} in captures.dictionary_id point to no capture_dictionaries row"
        in proc.stdout
    )
