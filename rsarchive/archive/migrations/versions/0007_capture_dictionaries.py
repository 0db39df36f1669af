"""Issue 14, a small archive: zstd dictionaries trained on the archive's own pages.

``capture_dictionaries`` holds each trained dictionary (versioned: one row per training), and
``captures.dictionary_id`` names the one a body was compressed with (NULL: none, which every
existing capture is; they stay readable as they are). Only additions (CREATE TABLE, ADD COLUMN
with a NULL default): no table is rebuilt, so the FTS triggers and the views stay.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capture_dictionaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("last_capture_id", sa.Integer(), nullable=True),
        sa.Column("zstd_id", sa.Integer(), nullable=False),
        sa.Column("dictionary", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_dictionaries")),
    )
    # A plain column, no REFERENCES: SQLite adds and drops such a column in place (a foreign
    # key would need a table rebuild each way); the store never deletes a dictionary.
    op.add_column("captures", sa.Column("dictionary_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops a plain column in place (no rebuild).
    op.drop_column("captures", "dictionary_id")
    op.drop_table("capture_dictionaries")
