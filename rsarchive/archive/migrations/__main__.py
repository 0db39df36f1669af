"""Draft the next migration step: ``python -m rsarchive.archive.migrations``.

Builds a scratch SQLite database by running every migration step, compares it with the models
(Alembic autogenerate) and prints the operations that would bring it level, ready to be pasted
(and checked, and frozen) into ``versions/NNNN_<what>.py``. Views, triggers and FTS tables are
not in the models: write those steps by hand.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext

from rsarchive.archive.engine import make_engine
from rsarchive.archive.models import metadata
from rsarchive.archive.schema import alembic_config, head_revision, include_name


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            context = MigrationContext.configure(conn, opts={"include_name": include_name})
            ops = produce_migrations(context, metadata)
        engine.dispose()
    print(f"# the models against the migrations up to {head_revision()}")
    if ops.upgrade_ops is None or ops.upgrade_ops.is_empty():
        print("# nothing to add: the migrations and the models agree")
        return
    print("def upgrade() -> None:")
    print(render_python_code(ops.upgrade_ops))
    print("\n\ndef downgrade() -> None:")
    print(render_python_code(ops.downgrade_ops))


if __name__ == "__main__":
    main()
