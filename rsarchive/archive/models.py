"""The archive schema (docs/architecture.md §4): typed models, the full-text index, times.

The one definition of the schema: ``create_schema`` and migrations are built from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations (Alembic batch mode on SQLite) can address them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "finished", "interrupted", "failed")
COMPRESSIONS = ("zstd", "zlib")


def utc_now_iso() -> str:
    """Now as the archive writes every time: ISO 8601 UTC text, seconds precision (``...Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # TEXT, not VARCHAR(n): URLs and bodies have no useful length limit (and PostgreSQL agrees).
    type_annotation_map = {str: Text}  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)


metadata = Base.metadata


class Article(Base):
    """One article, by normalised canonical URL; the latest observed version of its content."""

    __tablename__ = "articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(unique=True)
    post_id: Mapped[str | None] = mapped_column(index=True)
    slug: Mapped[str | None]
    title: Mapped[str]
    subtitle: Mapped[str | None]
    type: Mapped[str | None]
    section: Mapped[str | None]
    published_at: Mapped[str | None] = mapped_column(index=True)
    published_at_raw: Mapped[str | None]
    modified_at: Mapped[str | None]
    modified_at_raw: Mapped[str | None]
    image_url: Mapped[str | None]
    image_caption: Mapped[str | None]
    image_credit: Mapped[str | None]
    image_alt: Mapped[str | None]
    body_text: Mapped[str | None]
    body_html: Mapped[str | None]
    word_count: Mapped[int | None]
    language: Mapped[str | None]
    content_hash: Mapped[str]
    # Digest of the author, tag and inline-image lists as stored: lets a re-fetch tell whether the
    # link rows need rewriting without reading them back.
    lists_hash: Mapped[str | None]
    first_seen_at: Mapped[str]
    last_seen_at: Mapped[str]
    changed_at: Mapped[str]
    removed_at: Mapped[str | None]
    # Issue 5: the parser (``rsarchive.extract.PARSER_VERSION``) that made the stored fields.
    parser_version: Mapped[str | None]
    # Issue 11: ``rebelmouse`` (the page parser) or ``generic`` (the last-resort extractor).
    extractor: Mapped[str] = mapped_column(default="rebelmouse", server_default="rebelmouse")
    # Issue 10: the canonical URL the page declared when it is not the page's own URL (kept for
    # review; such a page is stored under its own URL and never overwrites another article).
    declared_canonical: Mapped[str | None]


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    url: Mapped[str | None]


class ArticleAuthor(Base):
    __tablename__ = "article_authors"
    __table_args__ = (UniqueConstraint("article_id", "author_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    url: Mapped[str | None]


class ArticleTag(Base):
    __tablename__ = "article_tags"
    __table_args__ = (UniqueConstraint("article_id", "tag_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]


class ArticleImage(Base):
    """An inline image of an article's body, in body order."""

    __tablename__ = "article_images"
    __table_args__ = (UniqueConstraint("article_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    position: Mapped[int]
    url: Mapped[str]
    caption: Mapped[str | None]
    credit: Mapped[str | None]
    alt: Mapped[str | None]


class TeaserContent(Base):
    """What a teaser shows (title, byline, excerpt, image...), stored once however often it is
    seen: the keep-reading feed shows the same recent posts under every article.

    Issue 14: one row per distinct content (``content_hash``, see ``teaser_content_hash``); a
    sighting names the content it showed last. Never changed or deleted (a teaser whose content
    changes names a new row), so an id once read stays valid.
    """

    __tablename__ = "teaser_contents"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(unique=True)
    post_id: Mapped[str | None] = mapped_column(index=True)
    title: Mapped[str]
    section: Mapped[str | None]
    authors: Mapped[str | None]
    published_at: Mapped[str | None]
    published_at_raw: Mapped[str | None]
    excerpt: Mapped[str | None]
    has_more: Mapped[bool]
    image_url: Mapped[str | None]
    image_caption: Mapped[str | None]


class TeaserSighting(Base):
    """A teaser seen on a page: re-sightings move ``last_seen_at`` (and the content shown)."""

    __tablename__ = "teaser_sightings"
    __table_args__ = (UniqueConstraint("page_url", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_url: Mapped[str]
    page_article_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    position: Mapped[int]
    url: Mapped[str] = mapped_column(index=True)
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    content_id: Mapped[int] = mapped_column(ForeignKey("teaser_contents.id"), index=True)
    first_seen_at: Mapped[str]
    last_seen_at: Mapped[str]


#: What a teaser shows, in ``teasers`` column order: the columns of ``teaser_contents`` that
#: ``content_hash`` covers.
TEASER_CONTENT_COLUMNS = (
    "post_id",
    "title",
    "section",
    "authors",
    "published_at",
    "published_at_raw",
    "excerpt",
    "has_more",
    "image_url",
    "image_caption",
)


def teaser_content_hash(values: Mapping[str, Any]) -> str:
    """sha256 hex of a teaser's content (``TEASER_CONTENT_COLUMNS`` of ``values``): the key
    that stores each distinct content once."""
    content = [values[name] for name in TEASER_CONTENT_COLUMNS]
    content[TEASER_CONTENT_COLUMNS.index("has_more")] = bool(values["has_more"])
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


class CrawlRun(Base):
    __tablename__ = "crawl_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in RUN_STATUSES)), name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    spider: Mapped[str]
    args: Mapped[str | None]
    started_at: Mapped[str]
    finished_at: Mapped[str | None]
    status: Mapped[str]
    finish_reason: Mapped[str | None]
    exit_code: Mapped[int | None]
    stats: Mapped[str | None]
    pid: Mapped[int | None]


class CaptureDictionary(Base):
    """Issue 14: a zstd dictionary trained on the archive's own pages (one row per version).

    Pages of one site share most of their bytes (template, scripts, styles): compressed with a
    dictionary trained on earlier pages, a capture takes a fraction of its size alone. A capture
    names the dictionary it needs (``captures.dictionary_id``); a dictionary is never changed or
    deleted while a capture names it.
    """

    __tablename__ = "capture_dictionaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[str]
    # The page captures it was trained on (how many, and the newest of them).
    samples: Mapped[int]
    last_capture_id: Mapped[int | None]
    zstd_id: Mapped[int]  # the id zstd writes into every frame compressed with it
    dictionary: Mapped[bytes] = mapped_column(LargeBinary)


class Capture(Base):
    """A raw HTTP response, content-addressed: an identical body re-fetched is stored once."""

    __tablename__ = "captures"
    __table_args__ = (
        UniqueConstraint("url", "sha256"),
        CheckConstraint(
            "compression IN ({})".format(", ".join(f"'{c}'" for c in COMPRESSIONS)),
            name="compression",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str]
    final_url: Mapped[str | None]
    requested_url: Mapped[str | None]
    status: Mapped[int]
    # Issue 5: indexed, `rsarchive reparse` walks captures in fetch order.
    fetched_at: Mapped[str] = mapped_column(index=True)
    content_type: Mapped[str | None]
    headers: Mapped[str | None]
    sha256: Mapped[str]
    size: Mapped[int]
    compression: Mapped[str]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="SET NULL"), index=True
    )
    # Issue 3/5: a load-more answer (JSON) is a capture too. NULL for a page; for an answer, the
    # page whose keep-reading feed it continues (its teasers' page_url), the position of its
    # first post, and its posts the walk had shown already (a JSON list of URLs, left out), so
    # `rsarchive reparse` puts its teasers where the crawl put them.
    feed_page_url: Mapped[str | None] = mapped_column(index=True)
    feed_position: Mapped[int | None]
    feed_repeats: Mapped[str | None]
    # Issue 14: the zstd dictionary the body was compressed with (capture_dictionaries.id;
    # NULL: none). No REFERENCES clause, so that SQLite adds and drops the column in place.
    dictionary_id: Mapped[int | None]


class Revision(Base):
    """An observed version of an article's content (the first version is a revision too)."""

    __tablename__ = "revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    captured_at: Mapped[str]
    content_hash: Mapped[str]
    title: Mapped[str]
    subtitle: Mapped[str | None]
    body_text: Mapped[str | None]
    body_html: Mapped[str | None]
    authors: Mapped[str | None]
    capture_id: Mapped[int | None] = mapped_column(
        ForeignKey("captures.id", ondelete="SET NULL"), index=True
    )
    # Issue 5: the parser that read this version out of its capture (NULL: before it was kept).
    parser_version: Mapped[str | None]


# Core handles on the tables: the write path uses Core statements, not the ORM unit of work.
articles = cast(Table, Article.__table__)
# Issue 14 (migration 0008): the --section and --type filters compare lower(...); a filtered
# search probes these for (value, rowid) before it scores a match (see Filters.fts_clauses).
Index("ix_articles_lower_section", func.lower(articles.c.section))
Index("ix_articles_lower_type", func.lower(articles.c.type))
authors = cast(Table, Author.__table__)
article_authors = cast(Table, ArticleAuthor.__table__)
tags = cast(Table, Tag.__table__)
article_tags = cast(Table, ArticleTag.__table__)
article_images = cast(Table, ArticleImage.__table__)
teaser_contents = cast(Table, TeaserContent.__table__)
teaser_sightings = cast(Table, TeaserSighting.__table__)
crawl_runs = cast(Table, CrawlRun.__table__)
captures = cast(Table, Capture.__table__)
capture_dictionaries = cast(Table, CaptureDictionary.__table__)
revisions = cast(Table, Revision.__table__)

# The ``teasers`` view (``views.py``): a sighting with the content it showed last, under the
# column names of the table it replaced (issue 14). Outside ``metadata``: nothing creates it from
# here, and only readers use it.
teasers = Table(
    "teasers",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("page_url", Text),
    Column("page_article_id", Integer),
    Column("position", Integer),
    Column("url", Text),
    Column("article_id", Integer),
    *(Column(name, Boolean if name == "has_more" else Text) for name in TEASER_CONTENT_COLUMNS),
    Column("first_seen_at", Text),
    Column("last_seen_at", Text),
)

# SQLite only: FTS5 external-content index over articles, kept in step by triggers. The update
# trigger fires only when an indexed column is written, so moving ``last_seen_at`` is free.
FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5("
    "title, subtitle, body_text, content='articles', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_ai AFTER INSERT ON articles BEGIN "
    "INSERT INTO articles_fts(rowid, title, subtitle, body_text) "
    "VALUES (new.id, new.title, new.subtitle, new.body_text); END",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_ad AFTER DELETE ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, subtitle, body_text) "
    "VALUES ('delete', old.id, old.title, old.subtitle, old.body_text); END",
    "CREATE TRIGGER IF NOT EXISTS articles_fts_au AFTER UPDATE OF title, subtitle, body_text "
    "ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, title, subtitle, body_text) "
    "VALUES ('delete', old.id, old.title, old.subtitle, old.body_text); "
    "INSERT INTO articles_fts(rowid, title, subtitle, body_text) "
    "VALUES (new.id, new.title, new.subtitle, new.body_text); END",
)


# --- issue 3: fetch state ---------------------------------------------------------------------


class FetchState(Base):
    """What the next run needs to know about a URL it fetched (or failed to fetch).

    ``url`` is the normalised requested URL. ``feed_date`` is the newest RSS/sitemap date seen
    for it when it was last fetched whole; ``failures`` counts consecutive failed attempts (0 once
    a fetch succeeds): a URL with failures is fetched again by the next feed or sitemap run.
    """

    __tablename__ = "fetch_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(unique=True)
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    feed_date: Mapped[str | None]
    last_status: Mapped[int | None]
    failures: Mapped[int] = mapped_column(default=0, server_default="0", index=True)
    last_error: Mapped[str | None]
    last_attempt_at: Mapped[str]
    last_success_at: Mapped[str | None]


fetch_state = cast(Table, FetchState.__table__)
