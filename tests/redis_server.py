"""A throwaway Redis server for tests: found or installed, on 127.0.0.1, stopped afterwards.

``redis_server()`` finds ``redis-server`` on PATH or installs Debian's ``redis-server`` package
(root only; the service the package starts is stopped again), starts one with no persistence on
a free loopback port in a temporary directory and, when the block ends, shuts it down and
deletes the directory. Where it cannot get a server it skips the tests that need one, or fails
them under CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pg import _APT_ENV, Unavailable, _free_port, _unavailable


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        """Shut the server down now (a frontier that goes away mid-run)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)


def install() -> None:
    """``apt-get install -y redis-server`` (after ``apt-get update`` when the lists lack it)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable("redis-server is not installed (apt-get install redis-server)")
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
    proc = subprocess.run(command, env=_APT_ENV, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=_APT_ENV, capture_output=True, check=False)
        proc = subprocess.run(command, env=_APT_ENV, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
        raise Unavailable(f"apt-get install redis-server failed: {' '.join(last)}")
    # The package may start its own service: we only wanted the binary.
    if shutil.which("service"):
        subprocess.run(["service", "redis-server", "stop"], capture_output=True, check=False)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A running server until the block ends (skips, or fails under CI, when there is none)."""
    try:
        import redis
    except ImportError:
        _unavailable("the redis client is missing: pip install -e '.[test]'")
    try:
        if not shutil.which("redis-server"):
            install()
    except Unavailable as exc:
        _unavailable(str(exc))
    home = Path(tempfile.mkdtemp(prefix="rsarchive-redis-"))
    proc = None
    try:
        for _attempt in range(3):
            port = _free_port()
            proc = subprocess.Popen(
                [
                    "redis-server", "--bind", "127.0.0.1", "--port", str(port),
                    "--dir", str(home), "--save", "", "--appendonly", "no",
                    "--protected-mode", "yes", "--logfile", str(home / "redis.log"),
                ],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if _ready(proc, redis.Redis(host="127.0.0.1", port=port)):
                break
            proc.terminate()  # the port was taken in between: try another
            proc.wait(timeout=10)
        else:
            raise RuntimeError(f"redis-server would not start: {(home / 'redis.log').read_text()}")
        yield RedisServer(port, proc)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


def _ready(proc: subprocess.Popen, client: object) -> bool:
    import redis

    for _ in range(100):
        if proc.poll() is not None:
            return False
        try:
            client.ping()  # type: ignore[attr-defined]
            return True
        except redis.ConnectionError:
            time.sleep(0.05)
    return False
