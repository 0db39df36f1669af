"""Issue 14, a small archive: a teaser's content is stored once, however often it is seen.

The keep-reading feed shows the same recent posts under every article, so the ``teasers`` table
held the same title, byline, excerpt and image URL thousands of times. Now ``teaser_contents``
holds each distinct content once (keyed by ``content_hash``) and ``teaser_sightings`` the small
part of a sighting (page, position, target, times, and the content it showed last); ``teasers``
becomes a view over the two with the table's columns and ids, so queries that read it keep
working. Every row moves (ids kept); downgrade moves them back into the table.

On PostgreSQL the views that read ``teasers`` (``article_list``, ``teaser_list``) depend on it:
they are dropped and re-created as the database had them. SQLite resolves a view's tables when
it is read, so there they stay as they are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from rsarchive.archive.models import TEASER_CONTENT_COLUMNS, teaser_content_hash

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 2000
# The views that read teasers (PostgreSQL keeps them bound to the table or view they read).
_DEPENDENTS = ("article_list", "teaser_list")

# A frozen copy of the view as ``archive/views.py`` creates it (SQLite stores the text verbatim).
_VIEW_BODY = """
SELECT
  s.id,
  s.page_url,
  s.page_article_id,
  s.position,
  s.url,
  s.article_id,
  c.post_id,
  c.title,
  c.section,
  c.authors,
  c.published_at,
  c.published_at_raw,
  c.excerpt,
  c.has_more,
  c.image_url,
  c.image_caption,
  s.first_seen_at,
  s.last_seen_at
FROM teaser_sightings s
JOIN teaser_contents c ON c.id = s.content_id"""
_CREATE_VIEW = {
    "sqlite": "CREATE VIEW IF NOT EXISTS teasers AS" + _VIEW_BODY,
    "postgresql": "CREATE OR REPLACE VIEW teasers AS" + _VIEW_BODY,
}

_SIGHTING_COLUMNS = ("id", "page_url", "page_article_id", "position", "url", "article_id")
_TIMES = ("first_seen_at", "last_seen_at")
_old = sa.table(
    "teasers",
    *(sa.column(name, sa.Boolean if name == "has_more" else None) for name in (
        *_SIGHTING_COLUMNS, *TEASER_CONTENT_COLUMNS, *_TIMES
    )),
)  # fmt: skip
_contents = sa.table(
    "teaser_contents",
    sa.column("id", sa.Integer),
    sa.column("content_hash", sa.Text),
    *(sa.column(name, sa.Boolean if name == "has_more" else sa.Text)
      for name in TEASER_CONTENT_COLUMNS),
)  # fmt: skip
_sightings = sa.table(
    "teaser_sightings",
    *(sa.column(name) for name in (*_SIGHTING_COLUMNS, "content_id", *_TIMES)),
)


def _drop_dependents() -> dict[str, str]:
    """PostgreSQL: drop the views that read ``teasers``; their definitions, to re-create."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return {}
    kept = {}
    for name in _DEPENDENTS:
        if conn.scalar(sa.text("SELECT to_regclass(:name)"), {"name": name}) is None:
            continue
        kept[name] = conn.scalar(
            sa.text("SELECT pg_get_viewdef(to_regclass(:name), true)"), {"name": name}
        )
        op.execute(f"DROP VIEW {name}")
    return kept


def _create_dependents(kept: dict[str, str]) -> None:
    for name, definition in kept.items():
        op.execute(f"CREATE VIEW {name} AS {definition}")


def _sync_sequence(table: str) -> None:
    """PostgreSQL: rows were copied with their ids; the next id comes after them."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
        )


def _create_new_tables() -> None:
    op.create_table(
        "teaser_contents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("post_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("section", sa.Text(), nullable=True),
        sa.Column("authors", sa.Text(), nullable=True),
        sa.Column("published_at", sa.Text(), nullable=True),
        sa.Column("published_at_raw", sa.Text(), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("has_more", sa.Boolean(), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("image_caption", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teaser_contents")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_teaser_contents_content_hash")),
    )
    op.create_index(
        op.f("ix_teaser_contents_post_id"), "teaser_contents", ["post_id"], unique=False
    )
    op.create_table(
        "teaser_sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_url", sa.Text(), nullable=False),
        sa.Column("page_article_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("content_id", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.Text(), nullable=False),
        sa.Column("last_seen_at", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_teaser_sightings_article_id_articles"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["teaser_contents.id"],
            name=op.f("fk_teaser_sightings_content_id_teaser_contents"),
        ),
        sa.ForeignKeyConstraint(
            ["page_article_id"],
            ["articles.id"],
            name=op.f("fk_teaser_sightings_page_article_id_articles"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teaser_sightings")),
        sa.UniqueConstraint("page_url", "url", name=op.f("uq_teaser_sightings_page_url_url")),
    )
    for column in ("article_id", "content_id", "page_article_id", "url"):
        op.create_index(
            op.f(f"ix_teaser_sightings_{column}"), "teaser_sightings", [column], unique=False
        )


def _move_rows() -> None:
    """Every teasers row becomes a sighting (same id) and, once per distinct content, a
    teaser_contents row."""
    conn = op.get_bind()
    ids: dict[str, int] = {}
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_old).where(_old.c.id > last).order_by(_old.c.id).limit(_BATCH)
        ).mappings().all()  # fmt: skip
        if not rows:
            return
        hashes = [teaser_content_hash(row) for row in rows]
        new: dict[str, dict] = {}
        for h, row in zip(hashes, rows, strict=True):
            if h not in ids and h not in new:
                new[h] = {"content_hash": h, **{k: row[k] for k in TEASER_CONTENT_COLUMNS}}
        if new:
            added = conn.execute(
                sa.insert(_contents).returning(_contents.c.content_hash, _contents.c.id),
                list(new.values()),
            )
            ids.update((h, i) for h, i in added)
        conn.execute(
            sa.insert(_sightings),
            [
                {
                    **{k: row[k] for k in (*_SIGHTING_COLUMNS, *_TIMES)},
                    "content_id": ids[h],
                }
                for h, row in zip(hashes, rows, strict=True)
            ],
        )
        last = rows[-1]["id"]


def upgrade() -> None:
    _create_new_tables()
    _move_rows()
    _sync_sequence("teaser_sightings")
    kept = _drop_dependents()
    for column in ("article_id", "page_article_id", "post_id", "url"):
        op.drop_index(op.f(f"ix_teasers_{column}"), table_name="teasers")
    op.drop_table("teasers")
    op.execute(_CREATE_VIEW[op.get_bind().dialect.name])
    _create_dependents(kept)


def downgrade() -> None:
    kept = _drop_dependents()
    op.execute("DROP VIEW teasers")
    # As migration 0001 made it.
    op.create_table(
        "teasers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_url", sa.Text(), nullable=False),
        sa.Column("page_article_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("post_id", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("section", sa.Text(), nullable=True),
        sa.Column("authors", sa.Text(), nullable=True),
        sa.Column("published_at", sa.Text(), nullable=True),
        sa.Column("published_at_raw", sa.Text(), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("has_more", sa.Boolean(), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("image_caption", sa.Text(), nullable=True),
        sa.Column("first_seen_at", sa.Text(), nullable=False),
        sa.Column("last_seen_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teasers")),
        sa.UniqueConstraint("page_url", "url", name=op.f("uq_teasers_page_url_url")),
        sa.ForeignKeyConstraint(
            ["page_article_id"],
            ["articles.id"],
            name=op.f("fk_teasers_page_article_id_articles"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_teasers_article_id_articles"),
            ondelete="SET NULL",
        ),
    )
    op.create_index(op.f("ix_teasers_article_id"), "teasers", ["article_id"], unique=False)
    op.create_index(
        op.f("ix_teasers_page_article_id"), "teasers", ["page_article_id"], unique=False
    )
    op.create_index(op.f("ix_teasers_post_id"), "teasers", ["post_id"], unique=False)
    op.create_index(op.f("ix_teasers_url"), "teasers", ["url"], unique=False)
    columns = ", ".join((*_SIGHTING_COLUMNS, *TEASER_CONTENT_COLUMNS, *_TIMES))
    picked = ", ".join(
        f"{'c' if name in TEASER_CONTENT_COLUMNS else 's'}.{name}"
        for name in (*_SIGHTING_COLUMNS, *TEASER_CONTENT_COLUMNS, *_TIMES)
    )
    op.execute(
        f"INSERT INTO teasers ({columns}) SELECT {picked} FROM teaser_sightings s "
        "JOIN teaser_contents c ON c.id = s.content_id"
    )
    _sync_sequence("teasers")
    for column in ("article_id", "content_id", "page_article_id", "url"):
        op.drop_index(op.f(f"ix_teaser_sightings_{column}"), table_name="teaser_sightings")
    op.drop_table("teaser_sightings")
    op.drop_index(op.f("ix_teaser_contents_post_id"), table_name="teaser_contents")
    op.drop_table("teaser_contents")
    _create_dependents(kept)
