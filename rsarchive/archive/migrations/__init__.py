"""Alembic migration scripts of the archive schema (run them with ``rsarchive db upgrade``).

``env.py`` and ``versions/`` are read by Alembic through ``rsarchive.archive.schema``; there is
no alembic.ini. Adding a step: see "Schema migrations" in the README.
"""
