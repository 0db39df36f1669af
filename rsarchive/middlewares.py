"""Downloader middlewares: robots.txt that fails means fetch nothing; Retry-After is honoured;
a redirect loop or a redirect off the site, a compressed body cut short or past the size limit
are failures, not silent drops.

Each replaces a Scrapy built-in at its own priority (see ``DOWNLOADER_MIDDLEWARES`` in settings).
"""

from __future__ import annotations

import logging
import re
import struct
import time
import zlib
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from rsarchive.config import get_float
from rsarchive.urls import same_site

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response

logger = logging.getLogger(__name__)

ROBOTS_UNAVAILABLE = "robots_unavailable"


class RobotsTxtUnavailableMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with the failure rules of RFC 9309 §2.3.1.

    Scrapy allows everything when robots.txt cannot be fetched and parses whatever body a 4xx or
    5xx answer brings. Here a 4xx (but 429) means "no robots.txt": allow all. A 5xx or 429 after
    retries, or a robots.txt that cannot be reached at all, means "assume complete disallow"
    (RFC 9309 §2.3.1.4): no request to that host goes out, and as every request of an rsarchive
    crawl goes to its one site, the crawl closes with reason ``robots_unavailable``.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._unavailable: dict[str, str] = {}  # netloc -> why
        self._closing: Any = None

    def process_request_2(self, rp: Any, request: Request) -> None:
        netloc = urlparse_cached(request).netloc
        if netloc in self._unavailable:
            raise IgnoreRequest(f"robots.txt unavailable: {self._unavailable[netloc]}")
        super().process_request_2(rp, request)

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        status = response.status
        if status >= 500 or status == 429:
            self._stats.inc_value("robotstxt/response_count")
            self._stats.inc_value(f"robotstxt/response_status_count/{status}")
            self._give_up(netloc, f"{response.url} answered HTTP {status}")
            # Hand the requests waiting for this host's parser None: process_request_2 refuses.
            waiting = self._parsers[netloc]
            self._parsers[netloc] = None
            if isinstance(waiting, Deferred):
                waiting.callback(None)
            return
        if status >= 400:
            # "Unavailable" in RFC terms: there are no rules, so everything is allowed.
            response = response.replace(body=b"")
        await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        self._give_up(netloc, f"robots.txt of {netloc} could not be fetched: {exc}")
        super()._robots_error(exc, netloc)

    def _give_up(self, netloc: str, why: str) -> None:
        self._unavailable[netloc] = why
        logger.error("%s: fetching nothing from %s (RFC 9309); try again later", why, netloc)
        self._stats.set_value(f"rsarchive/{ROBOTS_UNAVAILABLE}", why)
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None:
            # Not awaited: closing waits for the requests in progress, this one among them.
            self._closing = deferred_from_coro(engine.close_spider_async(reason=ROBOTS_UNAVAILABLE))


class RetryAfterMiddleware(RetryMiddleware):
    """Scrapy's retry middleware, honouring ``Retry-After`` on 429 and 503 answers.

    Scrapy retries those at once. Here the retry waits for the time the server asked
    (delta-seconds or an HTTP-date), with the engine paused meanwhile: the answer speaks for the
    whole host, and a crawl has one (requests already in the downloader's queue still go). A
    wait longer than ``RSARCHIVE_RETRY_AFTER_MAX`` seconds is not made: the request is given up
    (the spider counts it failed, for a later run to fetch). A shutdown ends a wait the same way.
    """

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.retry_after_max = get_float(settings, "RSARCHIVE_RETRY_AFTER_MAX", minimum=0)
        self._waiting = 0

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if (
            response.status not in (429, 503)
            or response.status not in self.retry_http_codes
            or request.meta.get("dont_retry", False)
        ):
            return super().process_response(request, response)
        delay = retry_after_seconds(response.headers.get(b"Retry-After"))
        if delay is None or delay <= 0:
            return super().process_response(request, response)
        stats = self.crawler.stats
        if delay > self.retry_after_max:
            logger.error(
                "Gave up %s: HTTP %s asks to retry after %.0f s, more than "
                "RSARCHIVE_RETRY_AFTER_MAX (%.0f s)",
                request.url,
                response.status,
                delay,
                self.retry_after_max,
            )
            stats.inc_value("rsarchive/retry_after_too_long")
            return response
        retry = self._retry(request, f"{response.status} with Retry-After {delay:g}")
        if retry is None:
            return response
        logger.info(
            "%s: HTTP %s, retrying in %g s (Retry-After)", request.url, response.status, delay
        )
        stats.inc_value("rsarchive/retry_after_waits")
        if not await self._wait(delay):
            return response
        return retry

    async def _wait(self, delay: float) -> bool:
        """Sleep ``delay`` seconds with the engine paused; False if a shutdown began meanwhile."""
        engine = self.crawler.engine
        self._waiting += 1
        if self._waiting == 1:
            engine.pause()
        try:
            end = time.monotonic() + delay
            while (left := end - time.monotonic()) > 0:
                # Short naps: a SIGTERM must not wait for the end of a long Retry-After.
                await sleep(min(left, 0.5))
                if not engine.running:
                    return False
            return True
        finally:
            self._waiting -= 1
            if self._waiting == 0 and engine.running:
                engine.unpause()


def retry_after_seconds(value: bytes | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3); None if absent or bad."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class FetchRefused(IgnoreRequest):
    """An answer not used, and why (``reason``): the request is a failed fetch, counted as
    ``rsarchive/fetch_failed/<reason>`` and recorded for the next run (Scrapy would drop an
    ``IgnoreRequest`` at DEBUG)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class RedirectRefused(FetchRefused):
    """A redirect not followed (``redirect_loop``, ``offsite_redirect``, ...)."""


class SiteRedirectMiddleware(RedirectMiddleware):
    """Scrapy's redirect middleware, saying why it does not follow a redirect.

    Scrapy drops a redirect loop after ``REDIRECT_MAX_TIMES`` hops and an off-site target in the
    offsite middleware, both as ``IgnoreRequest`` logged at DEBUG: the page would be lost
    without a word. Here the request fails with a reason the spider logs, counts and records:
    ``redirect_loop`` (a target already in the chain, caught at once), ``offsite_redirect``
    (a target off the configured site, never requested) and ``too_many_redirects``.
    """

    def _redirect(self, redirected: Request, request: Request, reason: Any) -> Request:
        chain = [*request.meta.get("redirect_urls", []), request.url]
        target = redirected.url.split("#", 1)[0]
        if target in (u.split("#", 1)[0] for u in chain):
            raise RedirectRefused("redirect_loop", f"{request.url} redirects back to {target}")
        site_url = self.crawler.settings.get("RSARCHIVE_SITE_URL")
        if site_url and not same_site(target, site_url):
            raise RedirectRefused("offsite_redirect", f"{request.url} redirects to {target}")
        try:
            return super()._redirect(redirected, request, reason)
        except RedirectRefused:
            raise
        except IgnoreRequest:
            raise RedirectRefused(
                "too_many_redirects",
                f"{request.url} redirects more than {self.max_redirect_times} times",
            ) from None


class WholeBodyMiddleware(HttpCompressionMiddleware):
    """Scrapy's decompression, and no body that may be cut short taken as a page.

    - Scrapy returns "as much data as possible" of a truncated gzip, deflate or zstd stream: a
      page cut half-way would be archived as if whole. Here it is a failed fetch (``incomplete``).
    - A body with neither Content-Length nor chunking ends when the connection closes (Scrapy
      flags it ``partial``): the connection may have died half-way. An HTML page is kept only
      when it visibly ends (``</html>``), else it is a failed fetch (``incomplete``).
    - A body past ``DOWNLOAD_MAXSIZE`` once decompressed (a compression bomb) is a failed fetch
      (``too_large``), not an ``IgnoreRequest`` nobody hears of.
    """

    def process_response(self, request: Request, response: Response) -> Request | Response:
        try:
            result = super().process_response(request, response)
        except FetchRefused:
            raise
        except IgnoreRequest as exc:
            raise FetchRefused("too_large", str(exc)) from None
        if (
            isinstance(result, HtmlResponse)
            and "partial" in result.flags
            and not _HTML_END.search(result.body[-4096:])
        ):
            raise FetchRefused(
                "incomplete",
                f"the connection closed after {len(result.body)} bytes, before the end of the page",
            )
        return result

    def _decode(self, body: bytes, encoding: bytes, max_size: int) -> bytes:  # type: ignore[override]
        decoded = super()._decode(body, encoding, max_size)
        if not _stream_complete(body, encoding, decoded):
            raise FetchRefused(
                "incomplete",
                f"the {encoding.decode('latin-1')} stream ends before its end "
                f"({len(body)} bytes received)",
            )
        return decoded


# The end of an HTML document: how a body that ended with the connection shows it is whole.
_HTML_END = re.compile(rb"</html\s*>(?:\s|<!--.*?-->)*$", re.IGNORECASE | re.DOTALL)


def _stream_complete(body: bytes, encoding: bytes, decoded: bytes) -> bool:
    """Whether a compressed body reached the end of its stream (its checksum trailer matches).

    Checksums of the decoded bytes are cheap; the bytes are never decompressed twice for gzip
    and zlib. Raw deflate has no trailer to check: it is taken as it is.
    """
    if encoding in (b"gzip", b"x-gzip"):
        if len(body) < 18:
            return False
        crc, size = struct.unpack("<II", body[-8:])
        return crc == zlib.crc32(decoded) and size == len(decoded) & 0xFFFFFFFF
    if encoding == b"deflate":
        if len(body) < 6 or (body[0] & 0x0F) != 8 or ((body[0] << 8) | body[1]) % 31:
            return True  # raw deflate
        return struct.unpack(">I", body[-4:])[0] == zlib.adler32(decoded)
    if encoding == b"br":
        import brotli

        decompressor = brotli.Decompressor()
        decompressor.process(body)
        return decompressor.is_finished()
    if encoding == b"zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().decompressobj()
        reader.decompress(body)
        return reader.eof
    return True
