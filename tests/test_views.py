"""The SQL views for hand-written queries: what a row of each says about the stored pages."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from test_archive import make_article, make_page, make_teaser

from rsarchive.archive import Archive, create_schema
from rsarchive.archive.views import DROP_VIEWS, VIEW_NAMES, create_view_ddl
from rsarchive.items import Author, Tag

SITE = "https://responsiblestatecraft.org"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two pages: B teases A (archived) and an unarchived article; A teases nothing."""
    path = tmp_path / "views.db"
    a = make_article(
        "alpha",
        authors=[Author("Zoe Last"), Author("Ann First")],
        tags=[Tag("Iran"), Tag("Diplomacy")],
        published_at="2021-05-19T14:03:00Z",
        word_count=100,
    )
    b = make_article(
        "beta",
        authors=[Author("Ann First")],
        tags=[],
        section="Europe",
        published_at="2022-01-02T09:00:00Z",
        word_count=50,
    )
    teaser_a = make_teaser("x", 0, url=a.url, title="Teased alpha")
    teaser_other = make_teaser("not-archived", 1)
    with Archive(f"sqlite:///{path}") as archive:
        archive.store_page(make_page(a))
        archive.store_page(make_page(b, [teaser_a, teaser_other]))
    return path


def query(db: Path, sql: str, *params: object) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def test_article_list_joins_authors_tags_and_teaser_counts(db):
    rows = {r["title"]: r for r in query(db, "SELECT * FROM article_list")}
    alpha, beta = rows["Title of alpha"], rows["Title of beta"]
    # Byline order, not name or id order.
    assert alpha["authors"] == "Zoe Last, Ann First"
    assert json.loads(alpha["authors_json"]) == ["Zoe Last", "Ann First"]
    assert alpha["tags"] == "Iran, Diplomacy"
    assert json.loads(alpha["tags_json"]) == ["Iran", "Diplomacy"]
    assert alpha["published_month"] == "2021-05"
    assert (alpha["teaser_count"], alpha["teased_count"]) == (0, 1)
    assert (beta["teaser_count"], beta["teased_count"]) == (2, 0)
    assert beta["tags"] is None and json.loads(beta["tags_json"]) == []
    assert alpha["revision_count"] == 1 and alpha["removed_at"] is None


def test_teaser_list_names_page_and_target_and_whether_archived(db):
    rows = query(db, "SELECT * FROM teaser_list ORDER BY page_url, position")
    assert [(r["page_title"], r["position"], r["title"], r["archived"]) for r in rows] == [
        ("Title of beta", 0, "Teased alpha", 1),
        ("Title of beta", 1, "Teaser not-archived", 0),
    ]
    assert rows[0]["article_title"] == "Title of alpha"
    assert rows[1]["article_title"] is None and rows[1]["article_id"] is None


def test_author_views(db):
    ann = query(
        db,
        "SELECT title, position FROM author_articles WHERE author = ? ORDER BY title",
        "Ann First",
    )
    assert ann == [
        {"title": "Title of alpha", "position": 1},
        {"title": "Title of beta", "position": 0},
    ]
    summary = query(db, "SELECT * FROM author_summary WHERE author = 'Ann First'")[0]
    assert (summary["articles"], summary["words"]) == (2, 150)
    assert summary["first_published_at"] == "2021-05-19T14:03:00Z"
    assert summary["last_published_at"] == "2022-01-02T09:00:00Z"
    tags = query(db, "SELECT tag, title FROM tag_articles ORDER BY tag")
    assert tags == [
        {"tag": "Diplomacy", "title": "Title of alpha"},
        {"tag": "Iran", "title": "Title of alpha"},
    ]


def test_articles_per_month(db):
    assert query(
        db, "SELECT month, section, articles, words FROM articles_per_month ORDER BY month"
    ) == [
        {"month": "2021-05", "section": "Middle East", "articles": 1, "words": 100},
        {"month": "2022-01", "section": "Europe", "articles": 1, "words": 50},
    ]


def test_views_are_created_once_and_dropped_cleanly(db):
    with Archive(f"sqlite:///{db}") as archive:
        create_schema(archive.engine)  # again: idempotent
    names = [r["name"] for r in query(db, "SELECT name FROM sqlite_master WHERE type = 'view'")]
    assert sorted(names) == sorted(VIEW_NAMES)
    with sqlite3.connect(db) as conn:
        for ddl in DROP_VIEWS:
            conn.execute(ddl)
    assert query(db, "SELECT name FROM sqlite_master WHERE type = 'view'") == []
    assert query(db, "SELECT count(*) AS n FROM articles") == [{"n": 2}]


def test_postgresql_ddl_uses_its_own_aggregates():
    ddl = "\n".join(create_view_ddl("postgresql"))
    assert "CREATE OR REPLACE VIEW article_list" in ddl
    assert "string_agg(au.name, ', ' ORDER BY aa.position)" in ddl
    assert "group_concat" not in ddl and "json_group_array" not in ddl
    with pytest.raises(ValueError):
        create_view_ddl("mysql")
