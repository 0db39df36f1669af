"""Shared test set-up: the fixture site served over real HTTP on 127.0.0.1, and real crawls."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rsarchive.demo import FixtureSite

ROOT = Path(__file__).resolve().parents[1]
#: Lines about files a test left in test-artifacts/ (screenshots), printed after the results.
ARTIFACT_LINES = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter, config) -> None:
    lines = config.stash.get(ARTIFACT_LINES, [])
    if lines:
        terminalreporter.section("test artifacts")
        for line in lines:
            terminalreporter.write_line(line)


#: An HTTP answer: status, headers, body.
Answer = tuple[int, dict[str, str], bytes]


@dataclass
class SiteServer:
    """The fixture site on a loopback port; ``overrides`` replace answers per path."""

    site: FixtureSite
    url: str = ""
    requests: list[str] = field(default_factory=list)
    user_agents: set[str] = field(default_factory=set)
    overrides: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    # Answers given once each, in order, before ``overrides`` and the site (e.g. a 503, then 200).
    queued: dict[str, list[tuple[int, dict[str, str], bytes]]] = field(default_factory=dict)
    # Seconds to wait before answering a path (a slow site); keep them small.
    delays: dict[str, float] = field(default_factory=dict)
    # (time.monotonic() when the request arrived, path), for every request.
    log: list[tuple[float, str]] = field(default_factory=list)

    # Answers computed per request, by path without the query: path -> f(full path) -> answer.
    handlers: dict[str, Callable[[str], tuple[int, dict[str, str], bytes]]] = field(
        default_factory=dict
    )
    # The request headers of every request, in order (beside ``requests``).
    request_headers: list[dict[str, str]] = field(default_factory=list)

    def answer(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(path)
        self.request_headers.append(dict(headers or {}))
        self.log.append((time.monotonic(), path))
        time.sleep(min(self.delays.get(path, 0.0), 10.0))
        if self.queued.get(path):
            return self.queued[path].pop(0)
        if path in self.overrides:
            return self.overrides[path]
        handler = self.handlers.get(path.split("?", 1)[0])
        if handler is not None:
            return handler(path)
        return self.site.respond(path, origin=self.url, request_headers=headers)

    def page_url(self, case: str) -> str:
        page = next(p for p in self.site.pages.values() if p.name == case)
        return page.url.replace("https://responsiblestatecraft.org", self.url)


@pytest.fixture(scope="session")
def fixture_site() -> FixtureSite:
    return FixtureSite(ROOT / "fixtures")


@contextmanager
def loopback_http(answer: Callable[[BaseHTTPRequestHandler], Answer]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (a free port) that answers each GET with
    ``answer(handler)``, in a thread per request, until the block ends; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = answer(self)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            # An answer may name its own length: a larger one makes a truncated body.
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The crawler may go away mid-answer (a killed or stopped test run): nothing to say.
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@contextmanager
def running_site(fixture_site: FixtureSite) -> Iterator[SiteServer]:
    """The fixture site served on 127.0.0.1 until the block ends (for fixtures of any scope)."""
    server_state = SiteServer(fixture_site)

    def answer(handler: BaseHTTPRequestHandler) -> Answer:
        server_state.user_agents.add(handler.headers.get("User-Agent", ""))
        return server_state.answer(handler.path, dict(handler.headers.items()))

    with loopback_http(answer) as url:
        server_state.url = url
        yield server_state


@pytest.fixture
def site_server(fixture_site: FixtureSite) -> Iterator[SiteServer]:
    with running_site(fixture_site) as server:
        yield server


# `scrapy` itself, with ScrapyDeprecationWarning turned into an error (PYTHONWARNINGS cannot name
# a category that lives in a third-party module).
_SCRAPY_STRICT = (
    "import sys, warnings; from scrapy.exceptions import ScrapyDeprecationWarning as W; "
    "warnings.simplefilter('error', W); from scrapy.cmdline import execute; "
    "sys.argv[0] = 'scrapy'; execute()"
)


@dataclass
class CrawlResult:
    returncode: int
    log: str
    db: Path

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()


def scrapy_crawl(
    spider: str,
    db: Path,
    site_url: str,
    *args: str,
    settings: dict[str, str] | None = None,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> CrawlResult:
    """Run `scrapy crawl` as a user would, in its own process, against a loopback site
    (``env``: environment variables to add, for the crawl and the processes it starts)."""
    cmd = [sys.executable, "-c", _SCRAPY_STRICT, "crawl", spider, *args]
    opts = {
        "RSARCHIVE_DATABASE_URL": f"sqlite:///{db}",
        "RSARCHIVE_SITE_URL": site_url,
        "DOWNLOAD_DELAY": "0",
        "AUTOTHROTTLE_ENABLED": "0",
        "RETRY_TIMES": "0",
        **(settings or {}),
    }
    for key, value in opts.items():
        cmd += ["-s", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")} | (env or {})
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    log = proc.stderr + proc.stdout
    assert "ScrapyDeprecationWarning" not in log, log
    return CrawlResult(proc.returncode, log, db)


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def rsarchive(*argv: str) -> subprocess.CompletedProcess:
    """The ``rsarchive`` command as a user runs it, without RSARCHIVE_* from this environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    return subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
