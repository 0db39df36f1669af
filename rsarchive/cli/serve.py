"""`rsarchive serve`: browse the archive in Datasette (the optional ``web`` extra), read-only."""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import webbrowser
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from rsarchive.cli import (
    EXIT_CONFIG,
    EXIT_OK,
    CommandError,
    add_db_argument,
    database_url,
    read_errors,
)

INSTALL_HINT = "pip install 'rsarchive[web]'"


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="browse the archive in Datasette, read-only (needs: " + INSTALL_HINT + ")",
        description="Serve the archive (a SQLite file) in Datasette: every table and view with "
        "descriptions, full-text search, facets on section, type and author, and canned "
        "queries. The file is opened read-only. Needs the web extra: " + INSTALL_HINT + ".",
    )
    add_db_argument(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument(
        "--port", type=_port, default=8001, help="port (default: %(default)s; 0 picks a free one)"
    )
    serve.add_argument("--open", action="store_true", help="open the web browser at the archive")
    serve.add_argument(
        "--immutable",
        action="store_true",
        help="the file will not change while served (a copy, no crawl running): faster pages",
    )
    serve.add_argument(
        "--no-images",
        action="store_true",
        help="article pages show images as links: the browser asks no host but this server",
    )
    serve.set_defaults(func=cmd_serve)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {value}")
    return port


def sqlite_path(url: str) -> Path:
    """The file behind a SQLite URL; anything else cannot be served."""
    from rsarchive.archive.engine import sqlite_file

    try:
        sa_url = make_url(url)
    except ArgumentError as exc:
        raise CommandError(f"not a database URL: {url} ({exc})", EXIT_CONFIG) from None
    if sa_url.get_backend_name() != "sqlite":
        raise CommandError(
            f"Datasette serves SQLite files only, not {sa_url.get_backend_name()} "
            f"({sa_url.render_as_string(hide_password=True)})",
            EXIT_CONFIG,
        )
    path = sqlite_file(sa_url)
    if path is None:
        raise CommandError("an in-memory database cannot be served: give a file", EXIT_CONFIG)
    return path.resolve()


def check_archive(path: Path) -> list[str]:
    """Refuse what is not a readable archive at this code's schema, as every reading command
    does (``queries.open_reader``); return the names of its tables and views."""
    from sqlalchemy import inspect

    from rsarchive.archive.engine import sqlite_url
    from rsarchive.archive.queries import open_reader

    with read_errors(), open_reader(sqlite_url(path)) as reader, reader.engine.connect() as conn:
        found = inspect(conn)
        return [*found.get_table_names(), *found.get_view_names()]


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        why = (exc.strerror or str(exc)).split(" (while attempting", 1)[0]
        hint = " (another server? pick another --port)" if exc.errno == errno.EADDRINUSE else ""
        raise CommandError(f"cannot listen on {host}:{port}: {why}{hint}", EXIT_CONFIG) from None


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import datasette  # noqa: F401
        import uvicorn
    except ImportError:
        raise CommandError(
            f"the web view needs Datasette, which is not installed: {INSTALL_HINT}", EXIT_CONFIG
        ) from None
    from rsarchive.settings import RSARCHIVE_SITE_URL
    from rsarchive.web import make_datasette

    path = sqlite_path(database_url(args.db))
    check_archive(path)
    if args.immutable and Path(f"{path}-wal").exists() and Path(f"{path}-wal").stat().st_size:
        raise CommandError(
            f"{path} has a write-ahead log (a crawl is running, or was killed): --immutable "
            "would miss its pages; serve without --immutable",
            EXIT_CONFIG,
        )
    ds = make_datasette(
        path, immutable=args.immutable, site_url=RSARCHIVE_SITE_URL, images=not args.no_images
    )
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}{ds.urls.database(path.stem)}"
    config = uvicorn.Config(ds.app(), log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    print(f"Serving {path} read-only at {url}  (Ctrl-C stops)", flush=True)
    if args.open:
        webbrowser.open(url)
    try:
        asyncio.run(_serve(ds, server, sock))
    finally:
        sock.close()
    return EXIT_OK


async def _serve(ds, server, sock: socket.socket) -> None:
    await ds.invoke_startup()
    await server.serve(sockets=[sock])
