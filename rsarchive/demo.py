"""The bundled fixture site: real-shaped RebelMouse pages that stand in for the live site.

`rsarchive demo` answers every request from it with a downloader middleware (no network); the
end-to-end tests serve the very same files over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response
from scrapy.responsetypes import responsetypes

from rsarchive.urls import normalize_url, same_site

FIXTURE_ORIGIN = "https://responsiblestatecraft.org"


def fixtures_dir() -> Path:
    """The fixture site: inside the installed package (wheel) or beside it (a checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_fixtures", here.parent / "fixtures"):
        if (candidate / "site").is_dir():
            return candidate
    raise FileNotFoundError("the bundled fixture site is missing (fixtures/)")


@dataclass
class FixturePage:
    name: str
    url: str
    status: int
    headers: dict[str, str]
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    def body(self) -> bytes:
        data = self.path.read_bytes()
        return gzip.decompress(data) if self.path.suffix == ".gz" else data


class FixtureSite:
    """Maps the paths of the real site to fixture files.

    Cases whose ``meta.json`` says ``"site": false`` are golden-test pages only (the demo's
    site stays as it is documented); ``every_case=True`` serves them too.
    """

    def __init__(self, root: Path | None = None, *, every_case: bool = False) -> None:
        self.root = root or fixtures_dir()
        self.pages: dict[str, FixturePage] = {}
        for meta_file in sorted(self.root.glob("*/meta.json")):
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            if not every_case and meta.get("site") is False:
                continue
            page_file = next(
                (
                    p
                    for p in (meta_file.with_name("page.html"), meta_file.with_name("page.html.gz"))
                    if p.exists()
                ),
                None,
            )
            if page_file is None:
                continue
            page = FixturePage(
                name=meta_file.parent.name,
                url=meta["url"],
                status=int(meta.get("status", 200)),
                headers=dict(meta.get("headers") or {"Content-Type": "text/html; charset=utf-8"}),
                path=page_file,
                meta=meta,
            )
            self.pages[self._key(page.url)] = page
        # The rest of the site (home, listings, feeds, sitemaps, load-more answers): by path.
        routes = self.root / "site" / "routes.json"
        self.routes: dict[str, dict[str, str]] = (
            json.loads(routes.read_text(encoding="utf-8")) if routes.exists() else {}
        )

    @staticmethod
    def _key(url_or_path: str) -> str:
        parts = urlsplit(normalize_url(url_or_path, base=FIXTURE_ORIGIN))
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def page_urls(self) -> list[str]:
        """URLs of every fixture page, in case-name order."""
        return [p.url for p in sorted(self.pages.values(), key=lambda p: p.name)]

    def respond(
        self,
        url_or_path: str,
        origin: str = FIXTURE_ORIGIN,
        request_headers: dict[str, str] | None = None,
    ) -> tuple[int, dict, bytes]:
        """(status, headers, body) for a path, with links moved onto ``origin``.

        Pages carry an ``ETag`` (a digest of the body); a request whose ``If-None-Match`` names
        it is answered 304 Not Modified, as a CDN in front of the site answers.
        """
        status, headers, body = self._respond(url_or_path, origin)
        if status == 200:
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            headers["ETag"] = etag
            asked = {k.lower(): v for k, v in (request_headers or {}).items()}
            if asked.get("if-none-match") == etag:
                return 304, {"ETag": etag}, b""
        return status, headers, body

    def _respond(self, url_or_path: str, origin: str) -> tuple[int, dict, bytes]:
        parts = urlsplit(url_or_path)
        path = parts.path or "/"
        if path == "/res/load_more_posts/data.js":
            # The answer depends on the feed (node_id) and the page number (pn) only.
            query = parse_qs(parts.query)
            node, pn = query.get("node_id", [""])[0], query.get("pn", [""])[0]
            path = f"{path}?node_id={node}&pn={pn}"
            if path not in self.routes:
                empty = {"has_more": False, "posts_by_source": {"current_page": []}}
                return 200, {"Content-Type": "application/json"}, json.dumps(empty).encode()
        # /europe/page/2 and /europe/page/2/ are the same page (the site redirects one).
        route = self.routes.get(path) or self.routes.get(path.rstrip("/") + "/")
        if route is not None:
            body = (self.root / "site" / route["file"]).read_bytes()
            if route["file"].endswith(".gz") and origin.rstrip("/") != FIXTURE_ORIGIN:
                body = gzip.compress(self._rebase(gzip.decompress(body), origin), mtime=0)
            else:
                body = self._rebase(body, origin)
            return 200, {"Content-Type": route["content_type"]}, body
        page = self.pages.get(self._key(url_or_path))
        if page is None:
            missing = next((p for p in self.pages.values() if p.status == 404), None)
            body = missing.body() if missing else b"<html><body>Page not found</body></html>"
            return 404, {"Content-Type": "text/html; charset=utf-8"}, self._rebase(body, origin)
        return page.status, dict(page.headers), self._rebase(page.body(), origin)

    @staticmethod
    def _rebase(body: bytes, origin: str) -> bytes:
        # A mirror names itself in its links, as the real site does.
        origin = origin.rstrip("/")
        if origin == FIXTURE_ORIGIN:
            return body
        return body.replace(FIXTURE_ORIGIN.encode(), origin.encode())


class FixtureSiteMiddleware:
    """Downloader middleware answering requests from the fixture site (``rsarchive demo``).

    On only when RSARCHIVE_FIXTURE_SITE names a fixture folder (or is ``bundled``). It sits last
    among the downloader middlewares, so robots.txt, offsite and the rest still apply.
    """

    def __init__(self, site: FixtureSite, site_url: str) -> None:
        self.site = site
        self.site_url = site_url

    @classmethod
    def from_crawler(cls, crawler: Any) -> FixtureSiteMiddleware:
        where = crawler.settings.get("RSARCHIVE_FIXTURE_SITE")
        if not where:
            raise NotConfigured
        root = None if where == "bundled" else Path(where)
        return cls(FixtureSite(root), crawler.settings.get("RSARCHIVE_SITE_URL"))

    def process_request(self, request: Request) -> Response | None:
        if not same_site(request.url, self.site_url):
            return None
        asked = {
            k.decode("latin-1"): b", ".join(v).decode("latin-1") for k, v in request.headers.items()
        }
        status, headers, body = self.site.respond(request.url, self.site_url, asked)
        cls = responsetypes.from_args(headers=headers, url=request.url, body=body)
        return cls(url=request.url, status=status, headers=headers, body=body, request=request)
