"""A generated site of N fixture-shaped article pages on 127.0.0.1, listed in one sitemap, that
records every request (when it came, when it was answered) and can answer slowly.

The pages are the archivable fixture pages replicated to N distinct URLs and post ids (as the
pipeline benchmark does). Used by the frontier tests and ``benchmarks/bench_frontier.py``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from xml.sax.saxutils import escape

from conftest import Answer, loopback_http

from benchmarks.bench_pipeline import SITE, replicate


@dataclass
class ReplicaSite:
    pages: dict[str, tuple[bytes, str]]  # path -> (body with the site's origin, content type)
    latency: float = 0.0
    url: str = ""
    # (path, arrived, answered) of every answered request, monotonic seconds.
    log: list[tuple[str, float, float]] = field(default_factory=list)
    # Answers given once each, in order, before the page itself (e.g. a 429, then the page).
    queued: dict[str, list[Answer]] = field(default_factory=dict)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def article_paths(self) -> list[str]:
        return sorted(self.pages)

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(path for path, _, _ in self.log)

    def answered(self) -> int:
        with self.lock:
            return sum(1 for path, _, _ in self.log if path in self.pages)

    def busiest_window(self, seconds: float) -> int:
        """The most requests that arrived within any ``seconds``-long window."""
        with self.lock:
            times = sorted(arrived for _, arrived, _ in self.log)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] > seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def respond(self, path: str) -> Answer:
        with self.lock:
            if self.queued.get(path):
                return self.queued[path].pop(0)
        status, ctype, body = self._page(path)
        return status, {"Content-Type": ctype}, body

    def _page(self, path: str) -> tuple[int, str, bytes]:
        if path == "/robots.txt":
            robots = f"User-agent: *\nAllow: /\nSitemap: {self.url}/sitemap.xml\n"
            return 200, "text/plain", robots.encode()
        if path == "/sitemap.xml":
            urls = "".join(
                f"<url><loc>{escape(self.url + p)}</loc></url>" for p in self.article_paths
            )
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
            )
            return 200, "application/xml", body.encode()
        if path in self.pages:
            body, ctype = self.pages[path]
            return 200, ctype, body.replace(SITE.encode(), self.url.encode())
        return 404, "text/plain", b"not found"


@contextmanager
def replica_site(pages: int, latency: float = 0.0) -> Iterator[ReplicaSite]:
    """The site of ``pages`` articles answering ``latency`` seconds late, until the block ends."""
    site = ReplicaSite(
        {url.removeprefix(SITE): (body, ctype) for url, body, ctype in replicate(pages)},
        latency,
    )

    def answer(handler: BaseHTTPRequestHandler) -> Answer:
        arrived = time.monotonic()
        with site.lock:
            site.active += 1
            site.max_active = max(site.max_active, site.active)
        time.sleep(site.latency)
        status, headers, body = site.respond(handler.path)
        # Counted as done before the answer goes out: a client cannot give its host slot back
        # (and another worker take it) before this point, so the count is exact.
        with site.lock:
            site.active -= 1
            site.log.append((handler.path, arrived, time.monotonic()))
        return status, headers, body

    with loopback_http(answer) as url:
        site.url = url
        yield site
