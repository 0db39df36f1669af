"""Alembic environment: migrates the connection rsarchive hands over (no alembic.ini, no URL).

``rsarchive.archive.schema`` opens the transaction (BEGIN IMMEDIATE on SQLite) and puts its
connection in ``config.attributes["connection"]``, so a whole upgrade commits or rolls back as one.
"""

from __future__ import annotations

from alembic import context

from rsarchive.archive.models import metadata
from rsarchive.archive.schema import include_name

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through rsarchive (`rsarchive db upgrade`), not the alembic command"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters little in place: a step that must rebuild a table uses batch mode.
    render_as_batch=True,
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
