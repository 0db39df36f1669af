"""A fault-injecting HTTP server for the fault tests: real-shaped pages, hostile answers.

It speaks HTTP/1.1 over raw sockets on 127.0.0.1 (port 0), so it can do what an HTTP library
would hide: a body cut without a length, an RST before any byte, a chunked body without its last
chunk, a stall after the headers, a slow drip, malformed headers. Paths without a fault are
answered from the fixture site (``rsarchive.demo.FixtureSite``), its links moved onto this
server, so pages look like the real site's.

Every connection is closed after one answer (``Connection: close``); every wait ends when the
server stops; ``stop()`` joins every thread it started, with a time bound.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus

from rsarchive.demo import FIXTURE_ORIGIN, FixtureSite

# How long one connection may take to send its request head, and the most any stall waits.
READ_TIMEOUT = 5.0
MAX_STALL = 30.0
MAX_HEAD = 64 * 1024


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    at: float  # time.monotonic()


class Conn:
    """One accepted connection: the request, and ways to answer it (right or wrong)."""

    def __init__(self, sock: socket.socket, request: Seen, server: FaultServer) -> None:
        self.sock = sock
        self.request = request
        self.server = server

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, status: int, headers: dict[str, str] | list[tuple[str, str]]) -> bytes:
        items = headers.items() if isinstance(headers, dict) else headers
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "X"
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in items)]
        names = {k.lower() for k, _ in items}
        if "connection" not in names:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def wait(self, seconds: float) -> None:
        """Sleep, but no longer than the server runs."""
        self.server.stopping.wait(min(seconds, MAX_STALL))


Action = Callable[[Conn], None]


# -- answers ------------------------------------------------------------------------------------


def ok(
    body: bytes,
    content_type: str = "text/html; charset=utf-8",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Action:
    """A well-formed answer with its Content-Length."""

    def act(c: Conn) -> None:
        h = {"Content-Type": content_type, **(headers or {})}
        h.setdefault("Content-Length", str(len(body)))
        c.send(c.head(status, h) + (b"" if c.request.method == "HEAD" else body))

    return act


def no_length(body: bytes, cut: int | None = None, content_type: str = "text/html") -> Action:
    """No Content-Length, no chunking: the body ends when the connection closes (at ``cut``)."""

    def act(c: Conn) -> None:
        c.send(c.head(200, {"Content-Type": content_type}) + body[:cut])

    return act


def chunked(body: bytes, last_chunk: bool = True, cut: int | None = None) -> Action:
    """A chunked body in 4 KiB chunks; without ``last_chunk`` the terminating chunk never comes."""

    def act(c: Conn) -> None:
        data = body[:cut]
        out = [c.head(200, {"Content-Type": "text/html; charset=utf-8",
                            "Transfer-Encoding": "chunked"})]  # fmt: skip
        for i in range(0, len(data), 4096):
            piece = data[i : i + 4096]
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        if last_chunk:
            out.append(b"0\r\n\r\n")
        c.send(b"".join(out))

    return act


def reset() -> Action:
    """An RST before any byte of the answer."""

    def act(c: Conn) -> None:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return act


def stall(body: bytes, after: int = 0, seconds: float = MAX_STALL) -> Action:
    """Send the headers (with the full length) and ``after`` body bytes, then say nothing."""

    def act(c: Conn) -> None:
        h = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}
        c.send(c.head(200, h) + body[:after])
        c.wait(seconds)

    return act


def silent(seconds: float = MAX_STALL) -> Action:
    """Accept the connection, read the request, never answer."""

    def act(c: Conn) -> None:
        c.wait(seconds)

    return act


def drip(body: bytes, size: int, interval: float) -> Action:
    """The whole answer, ``size`` bytes every ``interval`` seconds."""

    def act(c: Conn) -> None:
        h = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}
        c.send(c.head(200, h))
        for i in range(0, len(body), size):
            if c.server.stopping.is_set():
                return
            c.send(body[i : i + size])
            c.wait(interval)

    return act


def computed(answer: Callable[[str], Action]) -> Action:
    """An answer made from the request's path (endless feeds, chains of sitemaps)."""

    def act(c: Conn) -> None:
        answer(c.request.path)(c)

    return act


def redirect(location: str, status: int = 302) -> Action:
    return ok(b"", status=status, headers={"Location": location})


def raw(data: bytes) -> Action:
    """These bytes as the whole answer (malformed status lines and headers)."""

    def act(c: Conn) -> None:
        c.send(data)

    return act


def gzip_bomb(size: int, encoding: str = "gzip") -> bytes:
    """``size`` zero bytes compressed (about 1000:1) with ``encoding`` (gzip, deflate, br, zstd)."""
    zeros = b"\0" * size
    if encoding == "gzip":
        return gzip.compress(zeros, compresslevel=9, mtime=0)
    if encoding == "deflate":
        import zlib

        return zlib.compress(zeros, 9)
    if encoding == "br":
        import brotli

        return brotli.compress(zeros, quality=5)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(zeros)
    raise ValueError(encoding)


# -- the server ---------------------------------------------------------------------------------


@dataclass
class FaultServer:
    site: FixtureSite
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    # path (with its query, else without; a key ending in "*" is a prefix) -> answers used in
    # turn; the last one repeats.
    routes: dict[str, list[Action]] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, path: str, *actions: Action) -> str:
        """Answer ``path`` with ``actions`` in turn (the last one repeats); returns its URL."""
        self.routes[path] = list(actions)
        return self.url + path

    def fixture(self, case_or_path: str) -> bytes:
        """A fixture page or site route as this server serves it (links moved here)."""
        page = next((p for p in self.site.pages.values() if p.name == case_or_path), None)
        path = page.url.removeprefix(FIXTURE_ORIGIN) if page else case_or_path
        return self.site.respond(path, origin=self.url)[2]

    def fixture_path(self, case: str) -> str:
        page = next(p for p in self.site.pages.values() if p.name == case)
        return page.url.removeprefix(FIXTURE_ORIGIN)

    def gets(self, path: str) -> int:
        """How many requests asked for ``path`` (with or without a query)."""
        return sum(1 for r in self.requests if r.path.split("?")[0] == path)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # -- plumbing -------------------------------------------------------------------------------

    def _answer(self, c: Conn) -> None:
        path = c.request.path
        with self._lock:
            actions = self.routes.get(path) or self.routes.get(path.split("?")[0])
            if actions is None:
                actions = next(
                    (
                        a
                        for k, a in self.routes.items()
                        if k.endswith("*") and path.startswith(k[:-1])
                    ),
                    None,
                )
            action = (actions.pop(0) if len(actions) > 1 else actions[0]) if actions else None
        if action is not None:
            action(c)
            return
        status, headers, body = self.site.respond(path, origin=self.url, request_headers={
            k.title(): v for k, v in c.request.headers.items()})  # fmt: skip
        ok(body, headers.pop("Content-Type", "text/html"), status, headers)(c)

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(READ_TIMEOUT)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                data += chunk
            lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, path, _ = ([*lines[0].split(" "), "", ""])[:3]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            seen = Seen(method, path, headers, time.monotonic())
            with self._lock:
                self.requests.append(seen)
            self._answer(Conn(sock, seen, self))
        except OSError:
            pass  # the client went away: its problem, not the server's
        finally:
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
            t.start()
        listener.close()

    @contextmanager
    def running(self) -> Iterator[FaultServer]:
        listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        acceptor.start()
        try:
            yield self
        finally:
            self.stopping.set()
            acceptor.join(timeout=5)
            for t in list(self._threads):
                t.join(timeout=5)
