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
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 1000


_teasers = sa.table("teasers", sa.column("id", sa.Integer), sa.column("authors", sa.Text))


def _rewrite(where: sa.ColumnElement[bool], convert: Callable[[str], str]) -> None:
    """Rewrite ``teasers.authors`` of the rows ``where`` picks with ``convert``, in batches."""
    conn = op.get_bind()
    rows = conn.execute(sa.select(_teasers.c.id, _teasers.c.authors).where(where)).all()
    update = (
        sa.update(_teasers)
        .where(_teasers.c.id == sa.bindparam("row_id"))
        .values(authors=sa.bindparam("names"))
    )
    for i in range(0, len(rows), _BATCH):
        batch = rows[i : i + _BATCH]
        conn.execute(update, [{"row_id": row_id, "names": convert(t)} for row_id, t in batch])


def _as_json(joined: str) -> str:
    return json.dumps([n.strip() for n in joined.split(", ") if n.strip()], ensure_ascii=False)


def upgrade() -> None:
    authors = _teasers.c.authors
    _rewrite(sa.and_(authors.is_not(None), sa.not_(authors.startswith("["))), _as_json)


def downgrade() -> None:
    _rewrite(_teasers.c.authors.startswith("["), lambda text: ", ".join(json.loads(text)))
