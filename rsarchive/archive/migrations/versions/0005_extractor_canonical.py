"""Issues 10 and 11: which extractor read an article, and the canonical URL its page declared.

``articles.extractor`` is ``rebelmouse`` (the page parser) or ``generic`` (the last-resort
extractor for a page with no RebelMouse post block); every existing row was read by the page
parser. ``articles.declared_canonical`` keeps the canonical URL a page claimed when it is not the
page's own URL, so such a claim is reviewable instead of silently overwriting another article.
Only additions (ADD COLUMN): no table is rebuilt, so the FTS triggers and the views stay.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "articles",
        sa.Column("extractor", sa.Text(), server_default="rebelmouse", nullable=False),
    )
    op.add_column("articles", sa.Column("declared_canonical", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a plain column in place (no rebuild, the FTS triggers survive).
    op.drop_column("articles", "declared_canonical")
    op.drop_column("articles", "extractor")
