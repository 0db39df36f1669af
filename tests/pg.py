"""A throwaway PostgreSQL server for tests: found or installed, on 127.0.0.1, removed afterwards.

``postgres_server()`` finds the server binaries (Debian's ``/usr/lib/postgresql/<v>/bin``, else
``initdb`` on PATH) or installs Debian's ``postgresql`` package (root only), makes a new cluster
in a temporary directory with ``initdb`` as an unprivileged user, starts it on a free loopback
port (its Unix socket in that directory, password authentication) and, when the block ends,
stops it (``pg_ctl stop -m fast``) and deletes the directory. Where it cannot get a server it
skips the tests that need one, or fails them under CI (``CI=true``), where PostgreSQL must run.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "rsarchive"
_APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


class Unavailable(Exception):
    """No PostgreSQL server can be had on this machine (the reason, one line)."""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed under CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason}")


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.parent.name))


def find_bindir() -> Path | None:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres`` (the newest version), or None."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version_key)
    if debian:
        return debian[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _running_clusters() -> set[str]:
    """Debian's clusters (``pg_lsclusters``) that are running, as "version/name"."""
    if not shutil.which("pg_lsclusters"):
        return set()
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    return {
        f"{cols[0]}/{cols[1]}"
        for cols in (line.split() for line in out.stdout.splitlines())
        if len(cols) > 3 and cols[3].startswith("online")
    }


def install() -> None:
    """``apt-get install -y postgresql`` (after ``apt-get update`` when the lists lack it)."""
    if os.geteuid() != 0:
        raise Unavailable(
            "not installed, and installing it needs root (apt-get install postgresql)"
        )
    if not shutil.which("apt-get"):
        raise Unavailable("not installed, and there is no apt-get to install it")
    before = _running_clusters()
    command = [
        "apt-get", "install", "-y", "-q", "--no-install-recommends",
        # No fsync per unpacked file: a test machine's install, several times faster.
        "-o", "Dpkg::Options::=--force-unsafe-io", "postgresql",
    ]  # fmt: skip
    proc = subprocess.run(command, env=_APT_ENV, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        update = subprocess.run(
            ["apt-get", "update", "-q"], env=_APT_ENV, capture_output=True, text=True, check=False
        )
        if update.returncode == 0:
            proc = subprocess.run(
                command, env=_APT_ENV, capture_output=True, text=True, check=False
            )
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
        raise Unavailable(f"apt-get install postgresql failed: {' '.join(last)}")
    # The package makes and starts a default cluster where services may start: we only wanted
    # the binaries, so stop what the install started (our own server runs apart from it).
    for cluster in sorted(_running_clusters() - before):
        version, name = cluster.split("/", 1)
        subprocess.run(["pg_ctlcluster", version, name, "stop"], check=False)


@contextmanager
def _install_lock() -> Iterator[None]:
    with open(Path(tempfile.gettempdir()) / "rsarchive-pg-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A running throwaway cluster; ``new_database()`` gives the URL of a fresh database."""

    bindir: Path
    home: Path
    port: int
    password: str
    setup_seconds: float = 0.0
    _count: int = 0

    def url(self, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database; its SQLAlchemy URL (``postgresql+psycopg://...``)."""
        import psycopg

        self._count += 1
        name = f"archive{self._count}"
        conninfo = f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres"
        with psycopg.connect(conninfo, password=self.password, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _as_owner(owner: str | None, *cmd: str | Path) -> list[str]:
    args = [str(c) for c in cmd]
    return ["runuser", "-u", owner, "--", *args] if owner else args


def _owner() -> str | None:
    """The unprivileged user to run the server as (PostgreSQL refuses root), None when we are."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise Unavailable("running as root and there is no postgres or nobody user to run it as")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server until the block ends (skips, or fails under CI, when there is none)."""
    started = time.monotonic()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is missing: pip install -e '.[test]'")
    try:
        bindir = find_bindir()
        if bindir is None:
            # pytest -n N: one worker installs, the others wait for it (apt takes one at a time).
            with _install_lock():
                if find_bindir() is None:
                    install()
            bindir = find_bindir()
            if bindir is None:
                raise Unavailable("postgresql was installed but initdb is nowhere to be found")
        owner = _owner()
    except Unavailable as exc:
        _unavailable(str(exc))
    # Not under pytest's tmp_path: its directories are private to root, the server's owner
    # must reach its own.
    home = Path(tempfile.mkdtemp(prefix="rsarchive-pg-"))
    try:
        if owner:
            shutil.chown(home, owner)
        password = secrets.token_hex(16)
        pwfile = home / "password"
        pwfile.write_text(password + "\n", encoding="utf-8")
        if owner:
            shutil.chown(pwfile, owner)
        _run(_as_owner(
            owner, bindir / "initdb", "-D", home / "data", "-U", USER, "-E", "UTF8",
            "--no-locale", "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync",
        ))  # fmt: skip
        pwfile.unlink()
        # A throwaway cluster: no fsync. Socket in its own directory, never /var/run/postgresql.
        for attempt in range(3):
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {home} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            proc = subprocess.run(
                _as_owner(
                    owner, bindir / "pg_ctl", "-D", home / "data", "-l", home / "server.log",
                    "-w", "-t", "60", "-o", options, "start",
                ),
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode == 0:
                break
            if attempt == 2:  # the port may have been taken in between: try another
                log = (home / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"pg_ctl start failed: {proc.stdout}{proc.stderr}\n{log}")
        server = PostgresServer(bindir, home, port, password, time.monotonic() - started)
        yield server
    finally:
        if (home / "data" / "postmaster.pid").exists():
            subprocess.run(
                _as_owner(owner, bindir / "pg_ctl", "-D", home / "data", "-m", "fast", "stop"),
                capture_output=True, check=False,
            )  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
