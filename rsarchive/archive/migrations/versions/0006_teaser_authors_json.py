"""Issue 12: ``teasers.authors`` is a JSON list of names, like ``revisions.authors``.

Teasers stored before held the names joined with ", ", where "X, Jr." could not be told from two
names; this step rewrites those rows as JSON lists, split the only way the old text allows (a
name with a comma in it stays split: the page the teaser came from is re-read by `rsarchive
reparse` for the exact names). Data only: no table or column changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    conn = op.get_bind()
    teasers = sa.table("teasers", sa.column("id", sa.Integer), sa.column("authors", sa.Text))
    old = sa.select(teasers.c.id, teasers.c.authors).where(
        teasers.c.authors.is_not(None), sa.not_(teasers.c.authors.startswith("["))
    )
    rows = conn.execute(old).all()
    update = (
        sa.update(teasers)
        .where(teasers.c.id == sa.bindparam("row_id"))
        .values(authors=sa.bindparam("names"))
    )
    for i in range(0, len(rows), _BATCH):
        conn.execute(
            update,
            [
                {
                    "row_id": row_id,
                    "names": json.dumps(
                        [n.strip() for n in text.split(", ") if n.strip()], ensure_ascii=False
                    ),
                }
                for row_id, text in rows[i : i + _BATCH]
            ],
        )


def downgrade() -> None:
    conn = op.get_bind()
    teasers = sa.table("teasers", sa.column("id", sa.Integer), sa.column("authors", sa.Text))
    rows = conn.execute(
        sa.select(teasers.c.id, teasers.c.authors).where(teasers.c.authors.startswith("["))
    ).all()
    update = (
        sa.update(teasers)
        .where(teasers.c.id == sa.bindparam("row_id"))
        .values(authors=sa.bindparam("names"))
    )
    for i in range(0, len(rows), _BATCH):
        conn.execute(
            update,
            [
                {"row_id": row_id, "names": ", ".join(json.loads(text))}
                for row_id, text in rows[i : i + _BATCH]
            ],
        )
