"""The archive database: what one stored page leaves behind, and what a re-fetch may change."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, exc, text

from rsarchive.archive import Archive, codec, content_hash, create_schema, make_engine, utc_now_iso
from rsarchive.archive import store as store_module
from rsarchive.archive.models import metadata
from rsarchive.archive.revisions import article_versions
from rsarchive.items import Article, Author, FeedPage, Image, Page, Tag, Teaser

SITE = "https://responsiblestatecraft.org"
FTS_SHADOW_TABLES = ("articles_fts_data", "articles_fts_idx", "articles_fts_docsize")


# -- builders -------------------------------------------------------------------------------


def make_article(slug: str = "iran-deal", **overrides: Any) -> Article:
    fields: dict[str, Any] = {
        "url": f"{SITE}/2021/05/19/{slug}",
        "title": f"Title of {slug}",
        "post_id": f"post-{slug}",
        "slug": slug,
        "subtitle": "A subtitle",
        "type": "Analysis",
        "section": "Middle East",
        "authors": [Author("Ann Writer", f"{SITE}/u/ann"), Author("Bob Scribe")],
        "tags": [Tag("Iran", f"{SITE}/tag/iran"), Tag("Diplomacy")],
        "published_at": "2021-05-19T14:03:00Z",
        "published_at_raw": "May 19, 2021",
        "image": Image("https://assets.example/lead.jpg", "Lead caption", "Photo: AP", "alt"),
        "images": [Image("https://assets.example/inline.jpg", "Inline caption")],
        "body_text": "The negotiators met in Vienna. Sanctions relief was discussed.",
        "body_html": "<p>The negotiators met in Vienna.</p><p>Sanctions relief was discussed.</p>",
        "word_count": 10,
        "language": "en",
    }
    fields.update(overrides)
    return Article(**fields)


def make_teaser(slug: str, position: int = 0, **overrides: Any) -> Teaser:
    fields: dict[str, Any] = {
        "position": position,
        "url": f"{SITE}/2021/05/18/{slug}",
        "title": f"Teaser {slug}",
        "post_id": f"post-{slug}",
        "section": "Asia",
        "authors": [Author("Cy Teaser")],
        "published_at": "2021-05-18T10:00:00Z",
        "image": Image("https://assets.example/t.jpg", "Teaser caption"),
        "excerpt": "Visible text",
        "has_more": True,
    }
    fields.update(overrides)
    return Teaser(**fields)


def make_page(
    article: Article | None = None,
    teasers: list[Teaser] | None = None,
    *,
    url: str | None = None,
    body: bytes | None = None,
) -> Page:
    if url is None:
        url = article.url + "/?utm_source=x" if article else f"{SITE}/tag/iran"
    return Page(
        url=url,
        status=200,
        fetched_at="2021-06-01T08:00:00Z",
        requested_url=url,
        content_type="text/html; charset=utf-8",
        headers={"Content-Type": "text/html; charset=utf-8", "Server": "rebelmouse"},
        body=body if body is not None else b"<html>" + url.encode() + b"</html>" * 500,
        article=article,
        teasers=teasers if teasers is not None else [],
    )


@pytest.fixture(params=["direct", "core"])
def archive(tmp_path: Path, request: pytest.FixtureRequest):
    """An archive in a new SQLite file. Each test runs on both write paths: straight on the
    sqlite3 driver (SQLite's default) and through SQLAlchemy Core (what PostgreSQL uses)."""
    direct = request.param == "direct"
    with Archive(f"sqlite:///{tmp_path}/db/archive.sqlite", direct_sqlite=direct) as archive:
        yield archive


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):
    """Controls the time the store writes: ``clock.set("...Z")``."""

    class Clock:
        now = "2021-06-01T08:00:00Z"

        def set(self, value: str) -> None:
            self.now = value

    c = Clock()
    monkeypatch.setattr(store_module, "utc_now_iso", lambda: c.now)
    return c


def rows(archive: Archive, sql: str, **params: Any) -> list[dict[str, Any]]:
    with archive.engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def scalar(archive: Archive, sql: str, **params: Any) -> Any:
    with archive.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def dump(archive: Archive, *, without: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every table (and the FTS index's shadow tables), ordered, minus the ``without`` columns."""
    out = {}
    with archive.engine.connect() as conn:
        for table in metadata.sorted_tables:
            cols = [c for c in table.c if c.name not in without]
            out[table.name] = [
                tuple(r)
                for r in conn.execute(table.select().with_only_columns(*cols).order_by(table.c.id))
            ]
        for name in FTS_SHADOW_TABLES:
            out[name] = [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY 1")]
    return out


def fts_ids(archive: Archive, query: str) -> list[int]:
    with archive.engine.connect() as conn:
        sql = "SELECT rowid FROM articles_fts WHERE articles_fts MATCH ? ORDER BY rowid"
        return [r[0] for r in conn.exec_driver_sql(sql, (query,))]


def fts_integrity_check(archive: Archive) -> None:
    with archive.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 1)"
        )


# -- a new page -----------------------------------------------------------------------------


def test_new_page_stores_article_lists_capture_teasers_and_first_revision(archive, clock):
    article = make_article()
    page = make_page(article, [make_teaser("one", 0), make_teaser("two", 1)])

    result = archive.store_page(page, run_id=None)

    assert result.article_status == "new"
    assert result.capture_new is True
    assert (result.teasers_new, result.teasers_seen) == (2, 2)
    [row] = rows(archive, "SELECT * FROM articles")
    assert row["id"] == result.article_id
    assert row["url"] == article.url
    assert row["title"] == article.title
    assert row["image_url"] == "https://assets.example/lead.jpg"
    assert row["image_credit"] == "Photo: AP"
    assert row["content_hash"] == content_hash(article)
    assert row["first_seen_at"] == row["last_seen_at"] == row["changed_at"] == clock.now
    assert row["removed_at"] is None

    authors = rows(
        archive,
        "SELECT au.name, au.url, aa.position FROM article_authors aa "
        "JOIN authors au ON au.id = aa.author_id ORDER BY aa.position",
    )
    assert authors == [
        {"name": "Ann Writer", "url": f"{SITE}/u/ann", "position": 0},
        {"name": "Bob Scribe", "url": None, "position": 1},
    ]
    tags = rows(
        archive,
        "SELECT t.name, at.position FROM article_tags at JOIN tags t ON t.id = at.tag_id "
        "ORDER BY at.position",
    )
    assert [t["name"] for t in tags] == ["Iran", "Diplomacy"]
    images = rows(archive, "SELECT position, url, caption FROM article_images")
    assert images == [
        {"position": 0, "url": "https://assets.example/inline.jpg", "caption": "Inline caption"}
    ]

    teasers = rows(archive, "SELECT * FROM teasers ORDER BY position")
    assert [t["url"] for t in teasers] == [f"{SITE}/2021/05/18/one", f"{SITE}/2021/05/18/two"]
    first = teasers[0]
    assert first["page_url"] == article.url
    assert first["page_article_id"] == result.article_id
    assert first["article_id"] is None
    assert first["authors"] == '["Cy Teaser"]'  # a JSON list, as revisions.authors
    assert first["has_more"] == 1
    assert first["image_caption"] == "Teaser caption"
    assert first["first_seen_at"] == first["last_seen_at"] == clock.now

    [capture] = rows(archive, "SELECT * FROM captures")
    assert capture["id"] == result.capture_id
    assert capture["url"] == article.url  # normalised: no tracking parameter, no slash
    assert capture["final_url"] == page.url
    assert capture["size"] == len(page.body)
    assert capture["compression"] == "zstd"
    assert '"Server": "rebelmouse"' in capture["headers"]

    [revision] = rows(archive, "SELECT * FROM revisions")
    assert revision["article_id"] == result.article_id
    assert revision["content_hash"] == row["content_hash"]
    assert revision["capture_id"] == result.capture_id
    assert revision["captured_at"] == page.fetched_at
    assert json.loads(revision["authors"]) == ["Ann Writer", "Bob Scribe"]
    # The current version's body is the article's: not stored a second time.
    assert revision["body_text"] is None and revision["body_html"] is None


def test_restoring_the_same_page_changes_nothing_but_last_seen_at(archive, clock):
    page = make_page(make_article(), [make_teaser("one", 0), make_teaser("two", 1)])
    archive.store_page(page, run_id=None)
    # fetch_state records when the URL was last tried and fetched.
    moving = ("last_seen_at", "last_attempt_at", "last_success_at")
    before = dump(archive, without=moving)

    clock.set("2021-07-01T09:30:00Z")
    result = archive.store_page(page, run_id=None)

    assert result.article_status == "unchanged"
    assert result.capture_new is False
    assert (result.teasers_new, result.teasers_seen) == (0, 2)
    assert dump(archive, without=moving) == before  # FTS shadow tables included
    assert scalar(archive, "SELECT last_seen_at FROM articles") == "2021-07-01T09:30:00Z"
    assert {r["last_seen_at"] for r in rows(archive, "SELECT last_seen_at FROM teasers")} == {
        "2021-07-01T09:30:00Z"
    }
    assert scalar(archive, "SELECT count(*) FROM captures") == 1
    assert scalar(archive, "SELECT count(*) FROM revisions") == 1


def test_changed_body_updates_the_article_and_adds_a_revision(archive, clock):
    archive.store_page(make_page(make_article()), run_id=None)
    clock.set("2021-07-01T09:30:00Z")
    edited = make_article(body_text="The negotiators left Vienna without a deal.")

    result = archive.store_page(make_page(edited, body=b"<html>edited</html>"), run_id=None)

    assert result.article_status == "changed"
    assert result.capture_new is True
    [row] = rows(archive, "SELECT * FROM articles")
    assert row["body_text"] == edited.body_text
    assert row["changed_at"] == "2021-07-01T09:30:00Z"
    assert row["first_seen_at"] == "2021-06-01T08:00:00Z"
    assert row["content_hash"] == content_hash(edited)
    revisions = rows(archive, "SELECT * FROM revisions ORDER BY id")
    assert len(revisions) == 2
    # The old version got its own copy of the body as the article changed; the current one
    # reads the article's.
    assert revisions[0]["body_text"] == make_article().body_text
    assert revisions[1]["body_text"] is None
    with archive.reader() as conn:
        versions = article_versions(conn, row["id"])
    assert [v.body_text for v in versions] == [make_article().body_text, edited.body_text]
    assert revisions[1]["capture_id"] == result.capture_id
    assert revisions[0]["capture_id"] != revisions[1]["capture_id"]


def test_a_reflowed_body_keeps_the_revision_text_as_it_was_seen(archive, clock):
    """Whitespace alone is no new revision; the revision still reads the text it was seen with."""
    archive.store_page(make_page(make_article(body_text="Talks  resumed.\n\nIn Vienna.")))
    reflowed = make_article(body_text="Talks resumed.\nIn Vienna.")
    assert archive.store_page(make_page(reflowed)).article_status == "updated"
    article_id = scalar(archive, "SELECT id FROM articles")
    with archive.reader() as conn:
        [version] = article_versions(conn, article_id)
    assert version.body_text == "Talks  resumed.\n\nIn Vienna."
    assert scalar(archive, "SELECT body_text FROM articles") == reflowed.body_text


def test_metadata_change_updates_the_row_and_link_rows_without_a_revision(archive, clock):
    archive.store_page(make_page(make_article()), run_id=None)
    clock.set("2021-07-01T09:30:00Z")
    retagged = make_article(
        section="Europe",
        tags=[Tag("Diplomacy"), Tag("Europe")],
        images=[
            Image("https://assets.example/new.jpg"),
            Image("https://assets.example/inline.jpg"),
        ],
    )
    authors_before = rows(archive, "SELECT * FROM article_authors ORDER BY id")

    result = archive.store_page(make_page(retagged), run_id=None)

    assert result.article_status == "updated"
    row = rows(archive, "SELECT section, changed_at FROM articles")[0]
    assert row == {"section": "Europe", "changed_at": "2021-06-01T08:00:00Z"}
    tags = rows(
        archive,
        "SELECT t.name FROM article_tags at JOIN tags t ON t.id = at.tag_id ORDER BY at.position",
    )
    assert [t["name"] for t in tags] == ["Diplomacy", "Europe"]
    assert scalar(archive, "SELECT count(*) FROM revisions") == 1
    assert scalar(archive, "SELECT count(*) FROM tags") == 3  # "Iran" stays a known tag
    images = rows(archive, "SELECT url FROM article_images ORDER BY position")
    assert [i["url"] for i in images] == [
        "https://assets.example/new.jpg",
        "https://assets.example/inline.jpg",
    ]
    assert rows(archive, "SELECT * FROM article_authors ORDER BY id") == authors_before


def test_author_url_is_filled_once_learnt_and_links_are_kept(archive):
    archive.store_page(make_page(make_article()), run_id=None)
    links_before = rows(archive, "SELECT * FROM article_authors ORDER BY id")
    learnt = make_article(
        authors=[Author("Ann Writer", f"{SITE}/u/ann"), Author("Bob Scribe", f"{SITE}/u/bob")]
    )

    result = archive.store_page(make_page(learnt), run_id=None)

    assert result.article_status == "updated"  # same names: same content, no revision
    assert scalar(archive, "SELECT url FROM authors WHERE name = 'Bob Scribe'") == f"{SITE}/u/bob"
    assert rows(archive, "SELECT * FROM article_authors ORDER BY id") == links_before
    assert scalar(archive, "SELECT count(*) FROM revisions") == 1


def test_an_author_listed_twice_is_linked_once(archive):
    twice = make_article(authors=[Author("Ann Writer"), Author("Ann Writer"), Author("Bob")])
    archive.store_page(make_page(twice), run_id=None)
    assert scalar(archive, "SELECT count(*) FROM article_authors") == 2


# -- teasers --------------------------------------------------------------------------------


@pytest.mark.parametrize("match", ["url", "post_id"])
def test_a_teaser_stored_before_its_article_is_linked_when_the_article_arrives(archive, match):
    target = make_article("target")
    teaser = make_teaser("target", url=target.url if match == "url" else f"{SITE}/other/url")
    teaser.post_id = target.post_id if match == "post_id" else None
    archive.store_page(make_page(make_article("host"), [teaser]), run_id=None)
    assert scalar(archive, "SELECT article_id FROM teasers") is None

    result = archive.store_page(make_page(target), run_id=None)

    assert scalar(archive, "SELECT article_id FROM teasers") == result.article_id


@pytest.mark.parametrize("match", ["url", "post_id"])
def test_a_teaser_of_an_archived_article_is_linked_at_once(archive, match):
    target = make_article("target")
    stored = archive.store_page(make_page(target), run_id=None)
    teaser = make_teaser("target", url=target.url if match == "url" else f"{SITE}/other/url")
    teaser.post_id = target.post_id if match == "post_id" else "post-unrelated"

    archive.store_page(make_page(make_article("host"), [teaser]), run_id=None)

    assert scalar(archive, "SELECT article_id FROM teasers") == stored.article_id


def test_a_teaser_url_shown_twice_on_a_page_keeps_its_first_place(archive):
    teasers = [
        make_teaser("one", 0, title="First"),
        make_teaser("two", 1),
        make_teaser("one", 2, title="Repeat"),
    ]

    result = archive.store_page(make_page(make_article(), teasers), run_id=None)

    assert (result.teasers_new, result.teasers_seen) == (2, 2)
    rows_ = rows(archive, "SELECT url, position, title FROM teasers ORDER BY position")
    assert [(r["position"], r["title"]) for r in rows_] == [(0, "First"), (1, "Teaser two")]


def test_a_resighted_teaser_keeps_first_seen_and_takes_new_details(archive, clock):
    archive.store_page(make_page(make_article(), [make_teaser("one", 0)]), run_id=None)
    clock.set("2021-07-01T09:30:00Z")
    moved = [make_teaser("new", 0), make_teaser("one", 1, title="Retitled")]

    result = archive.store_page(make_page(make_article(), moved), run_id=None)

    assert (result.teasers_new, result.teasers_seen) == (1, 2)
    old = rows(archive, "SELECT * FROM teasers WHERE url = :u", u=f"{SITE}/2021/05/18/one")[0]
    assert (old["position"], old["title"]) == (1, "Retitled")
    assert old["first_seen_at"] == "2021-06-01T08:00:00Z"
    assert old["last_seen_at"] == "2021-07-01T09:30:00Z"


def test_a_teaser_seen_on_many_pages_stores_its_content_once(archive, clock, tmp_path):
    shown = [make_teaser("one", 0), make_teaser("two", 1)]
    for host in ("a", "b", "c"):
        archive.store_page(make_page(make_article(f"host-{host}"), shown), run_id=None)
    assert scalar(archive, "SELECT count(*) FROM teaser_contents") == 2
    assert scalar(archive, "SELECT count(*) FROM teaser_sightings") == 6
    # One page shows "one" retitled: that sighting shows the new content, the others the old.
    clock.set("2021-07-01T09:30:00Z")
    retitled = [make_teaser("one", 0, title="Retitled"), make_teaser("two", 1)]
    archive.store_page(
        make_page(make_article("host-b"), retitled, body=b"<html>b, later</html>"), run_id=None
    )
    seen = rows(
        archive,
        "SELECT page_url, title, last_seen_at FROM teasers WHERE url = :u ORDER BY page_url",
        u=f"{SITE}/2021/05/18/one",
    )
    assert [(r["page_url"][-6:], r["title"], r["last_seen_at"][:7]) for r in seen] == [
        ("host-a", "Teaser one", "2021-06"),
        ("host-b", "Retitled", "2021-07"),
        ("host-c", "Teaser one", "2021-06"),
    ]
    assert scalar(archive, "SELECT count(*) FROM teaser_contents") == 3
    # Another writer (a later crawl) finds the stored contents: no copy of them.
    with Archive(str(archive.engine.url)) as again:
        again.store_page(make_page(make_article("host-d"), retitled), run_id=None)
    assert scalar(archive, "SELECT count(*) FROM teaser_contents") == 3
    assert scalar(archive, "SELECT count(*) FROM teasers") == 8


@pytest.mark.parametrize("batched", [False, True])
def test_a_rolled_back_page_leaves_no_teaser_content_behind(archive, monkeypatch, batched):
    """The writer remembers content ids; those of a page that rolled back are forgotten, so the
    next page showing that content stores it again rather than naming a row that is gone."""
    real = store_module.fetchstate.page_params
    calls = {"n": 0}

    def fail_second(page: Page, now: str) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(page, now)

    monkeypatch.setattr(store_module.fetchstate, "page_params", fail_second)
    pages = [
        make_page(make_article("host-a"), [make_teaser("one")]),
        make_page(make_article("host-b"), [make_teaser("one"), make_teaser("two", 1)]),
        make_page(make_article("host-c"), [make_teaser("two")]),
    ]
    with archive.batched(pages=10) if batched else contextlib.nullcontext():
        archive.store_page(pages[0], run_id=None)
        with pytest.raises(RuntimeError, match="disk on fire"):
            archive.store_page(pages[1], run_id=None)
        archive.store_page(pages[2], run_id=None)
    got = rows(archive, "SELECT page_url, title FROM teasers ORDER BY id")
    assert [(r["page_url"][-6:], r["title"]) for r in got] == [
        ("host-a", "Teaser one"),
        ("host-c", "Teaser two"),
    ]
    assert scalar(archive, "SELECT count(*) FROM teaser_contents") == 2
    assert scalar(archive, "PRAGMA foreign_key_check") is None


def test_a_page_without_an_article_keeps_its_teasers_under_its_own_url(archive):
    page = make_page(None, [make_teaser("one")], url=f"{SITE}/tag/iran/?utm_medium=rss")

    result = archive.store_page(page, run_id=None)

    assert result.article_id is None
    assert result.article_status is None
    [teaser] = rows(archive, "SELECT page_url, page_article_id FROM teasers")
    assert teaser == {"page_url": f"{SITE}/tag/iran", "page_article_id": None}
    assert scalar(archive, "SELECT count(*) FROM articles") == 0


# -- full-text search -----------------------------------------------------------------------


def test_fts_finds_an_article_by_a_body_word_and_follows_updates(archive):
    stored = archive.store_page(make_page(make_article()), run_id=None)
    assert fts_ids(archive, "vienna") == [stored.article_id]

    archive.store_page(make_page(make_article(body_text="Talks resumed in Doha.")), run_id=None)

    assert fts_ids(archive, "vienna") == []
    assert fts_ids(archive, "doha") == [stored.article_id]
    assert fts_ids(archive, "subtitle") == [stored.article_id]
    fts_integrity_check(archive)


def test_fts_folds_diacritics(archive):
    stored = archive.store_page(make_page(make_article(body_text="Visit to Tōkyō and Genève")))
    assert fts_ids(archive, "geneve") == [stored.article_id]


def test_create_schema_is_idempotent_and_fills_a_missing_fts_index(archive):
    archive.store_page(make_page(make_article()), run_id=None)
    with archive.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE articles_fts")

    create_schema(archive.engine)
    create_schema(archive.engine)

    assert len(fts_ids(archive, "vienna")) == 1
    fts_integrity_check(archive)


# -- all or nothing -------------------------------------------------------------------------


def test_a_failure_in_the_middle_of_store_page_leaves_nothing_of_that_page(archive, monkeypatch):
    def broken_teaser_insert(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(archive, "_store_teasers", broken_teaser_insert)
    with pytest.raises(RuntimeError, match="disk on fire"):
        archive.store_page(make_page(make_article(), [make_teaser("one")]), run_id=None)

    for table in ("articles", "captures", "teasers", "revisions", "authors", "article_tags"):
        assert scalar(archive, f"SELECT count(*) FROM {table}") == 0, table
    assert fts_ids(archive, "vienna") == []
    assert scalar(archive, "PRAGMA integrity_check") == "ok"

    monkeypatch.undo()
    result = archive.store_page(make_page(make_article(), [make_teaser("one")]), run_id=None)
    assert result.article_status == "new"


def load_more_answer(page: Article) -> FeedPage:
    """The page's second feed page, with one teaser ("two", at position 1)."""
    return FeedPage(
        url=f"{SITE}/res/load_more_posts/data.js?node_id=1&pn=2",
        page_url=page.url,
        fetched_at="2026-11-25T14:00:00Z",
        teasers=[make_teaser("two", 1)],
        content_type="application/json",
        body=b'{"has_more": false, "posts_by_source": {"current_page": []}}',
        position=1,
    )


def test_a_load_more_answer_is_stored_whole_or_not_at_all(archive, monkeypatch):
    page = make_article()
    archive.store_page(make_page(page, [make_teaser("one")]), run_id=None)
    answer = load_more_answer(page)

    def broken_teaser_insert(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(archive, "_store_teasers", broken_teaser_insert)
    with pytest.raises(RuntimeError, match="disk on fire"):
        archive.store_feed_page(answer)
    assert scalar(archive, "SELECT count(*) FROM captures") == 1  # the page's only
    assert scalar(archive, "SELECT count(*) FROM teasers") == 1

    monkeypatch.undo()
    stored = archive.store_feed_page(answer)
    assert (stored.capture_new, stored.teasers_new) == (True, 1)
    [row] = rows(
        archive,
        "SELECT t.position, t.page_article_id IS NOT NULL AS linked, c.feed_page_url,"
        " c.feed_position, c.feed_repeats FROM teasers t, captures c"
        " WHERE t.url LIKE '%two' AND c.feed_page_url IS NOT NULL",
    )
    assert tuple(row.values()) == (1, 1, page.url, 1, None)
    # The same answer again: no new capture, the teaser only seen again.
    again = archive.store_feed_page(answer)
    assert (again.capture_new, again.capture_id, again.teasers_new) == (False, stored.capture_id, 0)


def test_a_load_more_answer_stored_before_its_page_gets_the_page_article(archive):
    # Pages are split concurrently (on extraction processes too): a page's load-more answer
    # may reach the store first. Its teasers still belong to the page's article.
    page = make_article()
    answer = load_more_answer(page)
    archive.store_feed_page(answer)
    assert scalar(archive, "SELECT page_article_id FROM teasers") is None
    stored = archive.store_page(make_page(page, [make_teaser("one")]), run_id=None)
    linked = rows(archive, "SELECT url, page_article_id FROM teasers ORDER BY position")
    assert [r["page_article_id"] for r in linked] == [stored.article_id, stored.article_id]
    # Another page's teasers are not claimed.
    other = make_article("other-deal")
    archive.store_page(make_page(other, [make_teaser("three")]), run_id=None)
    assert (
        scalar(
            archive,
            "SELECT count(*) FROM teasers WHERE page_article_id = :id",
            id=stored.article_id,
        )
        == 2
    )


def test_database_passes_integrity_checks_after_a_run_of_pages(archive):
    for i in range(20):
        article = make_article(f"a{i}", body_text=f"Body number {i} about Vienna.")
        teasers = [make_teaser(f"a{j}", k) for k, j in enumerate((i + 1, i + 2, i - 1))]
        archive.store_page(make_page(article, teasers), run_id=None)
        archive.store_page(make_page(make_article(f"a{i}", title=f"Edited {i}")), run_id=None)

    assert scalar(archive, "PRAGMA integrity_check") == "ok"
    assert rows(archive, "PRAGMA foreign_key_check") == []
    fts_integrity_check(archive)
    # Every teaser whose target is archived (teasers name it by post_id here) points at it.
    unlinked = rows(
        archive,
        "SELECT t.id FROM teasers t JOIN articles a ON a.post_id = t.post_id "
        "WHERE t.article_id IS NOT a.id",
    )
    assert unlinked == []
    assert scalar(archive, "SELECT count(*) FROM teasers WHERE article_id IS NOT NULL") == 56


# -- removal, captures, runs, queries -------------------------------------------------------


def test_mark_removed_keeps_the_content_and_a_refetch_clears_it(archive, clock):
    article = make_article()
    archive.store_page(make_page(article), run_id=None)
    clock.set("2021-08-01T00:00:00Z")

    assert archive.mark_removed(article.url + "/", 410) is True
    assert archive.mark_removed(article.url, 404) is False  # already marked
    assert archive.mark_removed(article.url, 500) is False
    assert archive.mark_removed(f"{SITE}/never/archived", 404) is False

    row = rows(archive, "SELECT removed_at, body_text, title FROM articles")[0]
    assert row == {
        "removed_at": "2021-08-01T00:00:00Z",
        "body_text": article.body_text,
        "title": article.title,
    }
    assert scalar(archive, "SELECT count(*) FROM revisions") == 1

    result = archive.store_page(make_page(article), run_id=None)
    assert result.article_status == "updated"
    assert scalar(archive, "SELECT removed_at FROM articles") is None


def test_capture_body_round_trips_and_identical_bodies_are_stored_once(archive):
    body = "<html>Ünïcode ".encode() + bytes(range(256)) * 200
    first = archive.store_page(make_page(make_article(), body=body), run_id=None)
    again = archive.store_page(make_page(make_article(), body=body), run_id=None)
    other = archive.store_page(make_page(make_article(), body=body + b"!"), run_id=None)

    assert archive.read_capture_body(first.capture_id) == body
    assert (again.capture_new, again.capture_id) == (False, first.capture_id)
    assert other.capture_new is True
    assert archive.read_capture_body(other.capture_id) == body + b"!"
    stored = rows(
        archive,
        "SELECT sha256, size, length(body) AS n FROM captures WHERE id = :i",
        i=first.capture_id,
    )[0]
    assert stored["size"] == len(body)
    assert stored["n"] < len(body)
    with pytest.raises(KeyError):
        archive.read_capture_body(999)


def test_captures_fall_back_to_zlib_without_zstandard(archive, monkeypatch):
    monkeypatch.setattr(codec, "zstandard", None)
    body = b"<html>" + b"zlib " * 1000
    result = archive.store_page(make_page(make_article(), body=body), run_id=None)
    assert scalar(archive, "SELECT compression FROM captures") == "zlib"
    assert archive.read_capture_body(result.capture_id) == body


def test_runs_are_recorded_with_serialisable_stats(archive):
    from datetime import UTC, datetime

    run_id = archive.start_run("article", {"url": f"{SITE}/x", "feed_pages": 2})
    archive.store_page(make_page(make_article()), run_id=run_id)
    archive.finish_run(
        run_id,
        status="finished",
        finish_reason="finished",
        stats={"start_time": datetime(2021, 6, 1, 8, 0, tzinfo=UTC), "item_scraped_count": 1},
        exit_code=0,
    )

    run = rows(archive, "SELECT * FROM crawl_runs")[0]
    assert run["status"] == "finished"
    assert run["exit_code"] == 0
    assert '"start_time": "2021-06-01T08:00:00Z"' in run["stats"]
    assert '"feed_pages": 2' in run["args"]
    assert run["started_at"] <= run["finished_at"]
    assert scalar(archive, "SELECT run_id FROM captures") == run_id
    with pytest.raises(ValueError):
        archive.finish_run(run_id, status="exploded", finish_reason=None, stats={})


def test_known_urls_answers_for_archived_articles_in_chunks(archive):
    archive.store_page(make_page(make_article("a")), run_id=None)
    archive.store_page(make_page(make_article("b")), run_id=None)
    asked = [f"{SITE}/2021/05/19/{i}" for i in range(1200)] + [make_article("b").url]

    assert archive.known_urls(asked) == {make_article("b").url}
    assert archive.known_urls([]) == set()


def test_list_articles_is_newest_first_with_authors_in_order_and_teaser_counts(archive):
    archive.store_page(make_page(make_article("old", published_at="2020-01-01T00:00:00Z")))
    archive.store_page(
        make_page(
            make_article("new", published_at="2022-01-01T00:00:00Z"),
            [make_teaser("x", 0), make_teaser("y", 1)],
        )
    )
    archive.store_page(make_page(make_article("undated", published_at=None)))

    listed = archive.list_articles(limit=10)

    assert [a["url"].rsplit("/", 1)[1] for a in listed] == ["new", "old", "undated"]
    assert listed[0]["authors"] == "Ann Writer, Bob Scribe"
    assert listed[0]["teaser_count"] == 2
    assert listed[1]["teaser_count"] == 0
    assert {"title", "url", "section", "type", "published_at"} <= listed[0].keys()
    assert len(archive.list_articles(limit=1)) == 1
    assert archive.count_teasers() == 2


# -- engine ---------------------------------------------------------------------------------


def test_sqlite_connections_get_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/new/dir/x.sqlite")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()


def test_a_writer_holds_the_write_lock_from_begin_and_readers_are_not_blocked(archive, tmp_path):
    archive.store_page(make_page(make_article()), run_id=None)
    path = archive.engine.url.database
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        # BEGIN IMMEDIATE takes the lock at once, before any write is issued.
        with archive.engine.begin(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        assert archive.known_urls([make_article().url]) == {make_article().url}
        assert archive.list_articles()
        assert time.monotonic() - started < 5
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_content_hash_ignores_whitespace_but_not_authors():
    article = make_article()
    reflowed = make_article(
        body_text="  The negotiators met in\nVienna.   Sanctions relief was discussed."
    )
    assert content_hash(article) == content_hash(reflowed)
    assert content_hash(article) != content_hash(make_article(authors=[Author("Ann Writer")]))
    assert content_hash(article) != content_hash(make_article(subtitle="Other"))


def test_utc_now_iso_is_seconds_precision_utc():
    now = utc_now_iso()
    assert len(now) == 20
    assert now.endswith("Z")
    assert now[10] == "T"


def test_schema_and_write_statements_compile_for_postgresql():
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable
    from sqlalchemy.sql import ClauseElement

    dialect = postgresql.dialect()
    for table in metadata.sorted_tables:
        assert "CREATE TABLE" in str(CreateTable(table).compile(dialect=dialect))
        for index in table.indexes:
            str(CreateIndex(index).compile(dialect=dialect))
    archive = Archive.__new__(Archive)
    archive._build_statements("postgresql")
    statements = [
        value
        for value in vars(archive).values()
        for value in (value.values() if isinstance(value, dict) else [value])
        if isinstance(value, ClauseElement)
    ]
    assert len(statements) > 10
    for statement in statements:
        sql = str(statement.compile(dialect=dialect))
        assert "?" not in sql
    upsert = str(archive._upsert_teasers.compile(dialect=dialect))
    assert "ON CONFLICT (page_url, url) DO UPDATE" in upsert
    assert "first_seen_at = excluded.first_seen_at" not in upsert


def test_fetch_state_upserts_compile_for_both_databases_and_refuse_others():
    from sqlalchemy.dialects import postgresql, sqlite

    from rsarchive.archive import fetchstate

    for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        sql = {
            kind: str(fetchstate.upsert(name, kind).compile(dialect=dialect))
            for kind in ("success", "not_modified", "failure")
        }
        assert all("ON CONFLICT (url) DO UPDATE" in s for s in sql.values())
        assert "failures = (fetch_state.failures + " in sql["failure"]
        assert "etag = coalesce(excluded.etag, fetch_state.etag)" in sql["not_modified"]
        assert "etag = excluded.etag" in sql["success"]
    # Another database would otherwise get PostgreSQL's syntax without a word.
    with pytest.raises(ValueError, match="the archive supports SQLite and PostgreSQL, not mysql"):
        fetchstate.upsert("mysql", "success")


@pytest.mark.parametrize("url", ["mysql+pymysql://u:p@127.0.0.1:1/x", "mssql+pyodbc://h/x"])
def test_an_archive_on_another_database_is_refused_before_connecting(url):
    with pytest.raises(ValueError, match="supports SQLite and PostgreSQL databases, not m"):
        Archive(url)
    with pytest.raises(ValueError, match="supports SQLite and PostgreSQL databases"):
        make_engine(url)


@pytest.mark.parametrize("command", [["db", "current"], ["list"], ["search", "Iran"]])
def test_the_cli_names_the_supported_databases_in_one_line(capsys, command):
    from rsarchive.cli import EXIT_CONFIG, main

    assert main([*command, "--db", "mysql://u@127.0.0.1:1/x"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "supports SQLite and PostgreSQL databases, not mysql" in err
    assert "Traceback" not in err


def test_an_in_memory_archive_works():
    with Archive("sqlite://") as archive:
        result = archive.store_page(make_page(make_article(), [make_teaser("one")]))
        assert result.article_status == "new"
        assert archive.list_articles()[0]["teaser_count"] == 1


# -- write paths and threads ----------------------------------------------------------------


def a_history_of_pages() -> list[Page]:
    """Pages that take most branches of store_page, in an order that matters."""
    target = make_article("target")
    waiting = make_teaser("target", 2, url=f"{SITE}/other/url")
    waiting.post_id = target.post_id
    doha = "Talks resumed in Doha."
    return [
        make_page(make_article(), [make_teaser("one", 0), make_teaser("two", 1), waiting]),
        make_page(make_article(), [make_teaser("one", 0), make_teaser("two", 1), waiting]),
        make_page(target, [make_teaser("iran-deal", 0, url=make_article().url)]),
        make_page(make_article(body_text=doha), body=b"<html>2</html>"),
        make_page(make_article(body_text=doha, section="Europe", tags=[Tag("Eu")], images=[])),
        make_page(None, [make_teaser("one", 0), make_teaser("three", 1)], url=f"{SITE}/tag/x"),
        make_page(make_article("three", authors=[Author("Ann Writer", f"{SITE}/u/ann2")])),
        make_page(make_article("three", authors=[Author("Ann Writer")]), body=b"<html>3</html>"),
    ]


def test_both_write_paths_leave_the_same_database(tmp_path, clock):
    dumps, results = [], []
    for direct in (True, False):
        clock.set("2021-06-01T08:00:00Z")
        with Archive(f"sqlite:///{tmp_path}/{direct}.sqlite", direct_sqlite=direct) as archive:
            run_id = archive.start_run("article", {})
            seen = []
            for i, page in enumerate(a_history_of_pages()):
                clock.set(f"2021-06-0{i + 1}T08:00:00Z")
                seen.append(archive.store_page(page, run_id=run_id))
            archive.mark_removed(make_article("three").url, 404)
            seen.append(archive.store_page(a_history_of_pages()[-1], run_id=run_id))
            dumps.append(dump(archive, without=("started_at", "pid")))
            results.append(seen)

    assert dumps[0] == dumps[1]
    assert results[0] == results[1]
    statuses = [r.article_status for r in results[0]]
    assert statuses == [
        *("new", "unchanged", "new", "changed", "updated", None, "new", "updated", "updated")
    ]


def test_driver_errors_are_sqlalchemy_errors_and_leave_nothing_of_the_page(archive):
    untitled = make_teaser("two", 1, title=None)  # teasers.title is NOT NULL

    with pytest.raises(exc.IntegrityError, match="NOT NULL"):
        archive.store_page(make_page(make_article(), [make_teaser("one"), untitled]))

    for table in ("articles", "captures", "teasers", "revisions", "authors", "article_tags"):
        assert scalar(archive, f"SELECT count(*) FROM {table}") == 0, table
    assert fts_ids(archive, "vienna") == []
    assert archive.store_page(make_page(make_article())).article_status == "new"


@pytest.mark.parametrize("where", ["file", "memory"])
def test_a_dedicated_writer_thread_can_run_and_close_the_archive(tmp_path, where):
    url = f"sqlite:///{tmp_path}/archive.sqlite" if where == "file" else "sqlite://"
    archive = Archive(url)  # opened in this thread, written only from the writer's
    pages = [make_page(make_article(f"a{i}"), [make_teaser(f"a{i + 1}", 0)]) for i in range(5)]
    with ThreadPoolExecutor(max_workers=1) as writer:
        assert writer.submit(threading.get_ident).result() != threading.get_ident()
        run_id = writer.submit(archive.start_run, "article", {}).result()
        stored = [writer.submit(archive.store_page, page, run_id).result() for page in pages]
        again = writer.submit(archive.store_page, pages[0], run_id).result()
        writer.submit(
            archive.finish_run, run_id, status="finished", finish_reason="finished", stats={}
        ).result()

        assert [r.article_status for r in stored] == ["new"] * 5
        assert again.article_status == "unchanged"
        # What the writer committed, read from this thread.
        assert len(archive.list_articles(limit=10)) == 5
        assert archive.known_urls([make_article("a4").url]) == {make_article("a4").url}
        assert scalar(archive, "SELECT status FROM crawl_runs") == "finished"
        # Teasers stored before their target article were linked when it arrived.
        assert scalar(archive, "SELECT count(*) FROM teasers WHERE article_id IS NOT NULL") == 4
        writer.submit(archive.close).result()


def test_core_statements_are_compiled_once_and_then_served_from_the_cache(tmp_path, caplog):
    with Archive(f"sqlite:///{tmp_path}/a.sqlite", direct_sqlite=False) as archive:
        archive.store_page(make_page(make_article("a"), [make_teaser("x", 0)]))
        archive.store_page(make_page(make_article("a"), [make_teaser("x", 0)]))
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):
            archive.store_page(make_page(make_article("b"), [make_teaser("y", 0)]))
            archive.store_page(make_page(make_article("b"), [make_teaser("y", 0)]))

    lines = [r.getMessage() for r in caplog.records]
    assert any("[cached since" in line for line in lines)
    assert not [line for line in lines if "[generated in" in line]


def test_a_logging_engine_sends_the_write_statements_through_core(archive, caplog):
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):
        archive.store_page(make_page(make_article()))
    assert any(line.startswith("INSERT INTO articles") for line in caplog.messages)


@pytest.mark.parametrize("direct", [True, False])
def test_sqlite_write_statements_skip_sqlalchemy_execution_unless_asked(tmp_path, direct):
    seen: list[str] = []
    with Archive(f"sqlite:///{tmp_path}/a.sqlite", direct_sqlite=direct) as archive:
        event.listen(archive.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
        archive.store_page(make_page(make_article(), [make_teaser("one")]))
    if direct:
        assert seen == ["BEGIN IMMEDIATE"]
    else:
        assert seen[0] == "BEGIN IMMEDIATE"
        assert any(sql.startswith("INSERT INTO articles") for sql in seen)


def test_a_batch_commits_its_pages_and_a_failing_page_is_rolled_back_alone(archive, tmp_path):
    good = [make_page(make_article(f"a{i}"), [make_teaser(f"t{i}", 0)]) for i in range(5)]
    broken = make_page(make_article("broken", title=None))  # NOT NULL: the insert fails
    with archive.batched(2):
        for page in good[:2]:
            archive.store_page(page)
        with pytest.raises(exc.IntegrityError):
            archive.store_page(broken)
        for page in good[2:]:
            archive.store_page(page)
        # Committed every 2 pages: another connection sees the first 4, not yet the 5th.
        with sqlite3.connect(tmp_path / "db" / "archive.sqlite") as other:
            assert other.execute("SELECT count(*) FROM articles").fetchone()[0] == 4
    urls = [r["url"] for r in rows(archive, "SELECT url FROM articles ORDER BY id")]
    assert urls == [p.article.url for p in good]
    # Nothing of the failed page stayed: no capture, no fetch state.
    assert scalar(archive, "SELECT count(*) FROM captures") == 5
    assert scalar(archive, "SELECT count(*) FROM teasers") == 5
