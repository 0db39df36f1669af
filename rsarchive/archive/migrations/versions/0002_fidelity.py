"""Issue 5, fidelity: the parser version on articles and revisions; captures indexed by time.

Only additions (ADD COLUMN, CREATE INDEX): no table is rebuilt, so the FTS triggers on articles
and any view stay as they are.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("articles", sa.Column("parser_version", sa.Text(), nullable=True))
    op.add_column("revisions", sa.Column("parser_version", sa.Text(), nullable=True))
    op.create_index(op.f("ix_captures_fetched_at"), "captures", ["fetched_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_captures_fetched_at"), table_name="captures")
    # SQLite >= 3.35 drops a plain column in place (no rebuild, the FTS triggers survive).
    op.drop_column("revisions", "parser_version")
    op.drop_column("articles", "parser_version")
