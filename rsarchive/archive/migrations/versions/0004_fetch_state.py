"""Issue 3, nothing lost: ``fetch_state``; and load-more answers kept as captures.

``fetch_state`` is what the next run needs to know about each URL: validators for conditional
GETs (ETag, Last-Modified), the feed/sitemap date that was seen, and consecutive failures so that
a failed page is retried by the next run. A new table only: an upgraded archive starts with it
empty, and the spiders fall back to ``articles`` for what is held.

``captures`` gains what a replay of a load-more answer needs (``feed_page_url``,
``feed_position``, ``feed_repeats``; NULL for a page, which every existing capture is). Only
additions (ADD COLUMN, CREATE INDEX): no table is rebuilt.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fetch_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("feed_date", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.Text(), nullable=False),
        sa.Column("last_success_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fetch_state")),
        sa.UniqueConstraint("url", name=op.f("uq_fetch_state_url")),
    )
    op.create_index(op.f("ix_fetch_state_failures"), "fetch_state", ["failures"], unique=False)
    op.add_column("captures", sa.Column("feed_page_url", sa.Text(), nullable=True))
    op.add_column("captures", sa.Column("feed_position", sa.Integer(), nullable=True))
    op.add_column("captures", sa.Column("feed_repeats", sa.Text(), nullable=True))
    op.create_index(op.f("ix_captures_feed_page_url"), "captures", ["feed_page_url"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_captures_feed_page_url"), table_name="captures")
    # SQLite >= 3.35 drops a plain column in place (no rebuild).
    op.drop_column("captures", "feed_repeats")
    op.drop_column("captures", "feed_position")
    op.drop_column("captures", "feed_page_url")
    op.drop_index(op.f("ix_fetch_state_failures"), table_name="fetch_state")
    op.drop_table("fetch_state")
