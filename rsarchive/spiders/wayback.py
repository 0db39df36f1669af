"""The `wayback` spider: back-fill the archive from the Internet Archive's Wayback Machine.

scrapy crawl wayback                                   # every capture of the site
scrapy crawl wayback -a from=2019 -a to=2024           # captured in those years
scrapy crawl wayback -a url=/some-article/             # one page's captures
scrapy crawl wayback -a live=0                         # back-fill only: do not ask the site

It asks the CDX API (``<RSARCHIVE_WAYBACK_URL>/cdx/search/cdx``) for the site's HTML captures
that answered 200 (one per distinct body: ``collapse=digest``), page by page (``resumeKey``),
then fetches each raw capture (``/web/<timestamp>id_/<url>``: the bytes as archived, without the
Wayback toolbar) and stores it as a page of the site fetched at the capture's time: edits made
years ago become revisions, and articles since deleted come back. Polite as the Internet Archive
asks: one request at a time, a few seconds apart, ``Retry-After`` honoured (429/503), the honest
User-Agent. Incremental: a later run asks only for captures newer than the newest it holds, and
fetches again the captures whose fetch failed before.

Then (unless ``-a live=0``) it asks the live site, once, for each page whose captures this run
stored, after them (when the spider is idle), so the history stays in time order: a 200 is
archived as any crawled page (the newest revision), a 404/410 marks the archived article
``removed_at``, a failure is recorded in the fetch state (the next feed or sitemap run asks
again). A later run asks only for the pages it stored new captures of: the feed and sitemap
spiders watch the live site. Those requests go to the site's host: its robots.txt applies, and
this spider's delay (stricter than the site's own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import scrapy
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from rsarchive.archive import models as m
from rsarchive.archive.fetchstate import outstanding
from rsarchive.config import get_site_url
from rsarchive.items import Page
from rsarchive.spiders import RebelMouseSpider
from rsarchive.urls import normalize_url, same_site, site_host

CDX_FIELDS = "timestamp,original,statuscode,digest,mimetype"
CDX_PAGE_SIZE = 500  # captures per CDX answer; the next page is asked with its resumeKey
_HTML = ("text/html", "application/xhtml+xml")
# Headers of the original answer that describe bytes the stored body no longer has.
_TRANSPORT = frozenset({"content-encoding", "transfer-encoding", "content-length", "connection"})
_ORIG = "x-archive-orig-"


def wayback_time(timestamp: str) -> str:
    """A CDX timestamp (``20190102030405``) as the archive writes times."""
    return datetime.strptime(timestamp[:14], "%Y%m%d%H%M%S").strftime("%Y-%m-%dT%H:%M:%SZ")


def _after(iso: str) -> str:
    """The CDX timestamp one second after the archive time ``iso``."""
    when = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ") + timedelta(seconds=1)
    return when.strftime("%Y%m%d%H%M%S")


class WaybackSpider(RebelMouseSpider):
    name = "wayback"
    # The Internet Archive asks for a low rate: one request at a time, a few seconds apart
    # (-s DOWNLOAD_DELAY=... wins, as for every setting).
    custom_settings: ClassVar[dict[str, Any]] = {
        "DOWNLOAD_DELAY": 4.0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "AUTOTHROTTLE_START_DELAY": 4.0,
    }

    def __init__(self, url: str | None = None, live: str | None = None, **kwargs: Any) -> None:
        span = {k: kwargs.pop(k, None) for k in ("from", "to")}
        super().__init__(url=url, live=live, **span, **kwargs)
        self.given_url = url
        self.span: dict[str, str] = {}
        self.usage_error: str | None = None
        self.live = str(live).strip() != "0" if live is not None else True
        if live is not None and str(live).strip() not in ("0", "1"):
            self.usage_error = f"live={live!r}: give 1 (ask the live site, the default) or 0"
        # The pages whose captures this run stored, in order: the live site is asked for them.
        self._to_check: dict[str, None] = {}
        for key, value in span.items():
            if value is None:
                continue
            digits = str(value).strip()
            for mark in "-:TZ ":
                digits = digits.replace(mark, "")
            if not (digits.isdigit() and 4 <= len(digits) <= 14):
                self.usage_error = (
                    f"{key}={value!r}: give a year, a day or a timestamp (2019, 2019-05-01)"
                )
            self.span[key] = digits

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> WaybackSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.stored, signal=signals.item_scraped)
        crawler.signals.connect(spider.check_live, signal=signals.spider_idle)
        return spider  # type: ignore[return-value]

    def configure(self, settings: Any) -> None:
        super().configure(settings)
        self.wayback_url = get_site_url(settings, "RSARCHIVE_WAYBACK_URL")
        # Fetches stay on the site's host and, for this spider only, the Wayback Machine's.
        self.allowed_domains.append(site_host(self.wayback_url).split(":")[0])

    # -- the CDX listing -----------------------------------------------------------------------

    def _start_requests(self) -> Iterator[scrapy.Request]:
        stats = self.crawler.stats
        if self.usage_error:
            self.logger.error("wayback spider: %s", self.usage_error)
            stats.set_value("rsarchive/usage_error", self.usage_error)
            return
        if self.given_url:
            page = self.site_link(self.given_url)
            if page is None:
                self.logger.error("%s is not on the configured site", self.given_url)
                stats.set_value("rsarchive/usage_error", "url off the site")
                return
            self.scope = page
        else:
            self.scope = f"{site_host(self.site_url)}/*"
        yield from self._retry_failed()
        query = {"url": self.scope, **self.span}
        newest = self._newest_held()
        if newest is not None and _after(newest) > query.get("from", ""):
            self.logger.info("holding captures up to %s: asking only for newer ones", newest)
            query["from"] = _after(newest)
        self.query = query
        yield self._cdx_request()

    def _cdx_request(self, resume_key: str | None = None) -> scrapy.Request:
        params = {
            **self.query,
            "output": "json",
            "fl": CDX_FIELDS,
            "collapse": "digest",
            "filter": "statuscode:200",
            "limit": str(CDX_PAGE_SIZE),
            "showResumeKey": "true",
        }
        if resume_key:
            params["resumeKey"] = resume_key
        return scrapy.Request(
            f"{self.wayback_url}/cdx/search/cdx?{urlencode(params)}",
            callback=self.parse_cdx,
            errback=self.feed_failed,
            dont_filter=True,
        )

    def parse_cdx(self, response: Response) -> Iterator[scrapy.Request]:
        stats = self.crawler.stats
        try:
            rows = json.loads(response.body or b"[]")
        except ValueError:
            self.logger.error("the CDX API did not answer JSON: %s", response.url)
            stats.inc_value("rsarchive/fetch_failed")
            return
        # [header, capture..., [], [resumeKey]] when more pages follow.
        resume_key = None
        if len(rows) >= 2 and rows[-2] == [] and len(rows[-1]) == 1:
            resume_key = rows[-1][0]
            rows = rows[:-2]
        header, captures = (rows[0], rows[1:]) if rows else ([], [])
        for row in captures:
            capture = dict(zip(header, row, strict=False))
            stats.inc_value("rsarchive/wayback/listed")
            original = capture.get("original", "")
            mime = (capture.get("mimetype") or "").split(";")[0].strip().lower()
            if not same_site(original, self.site_url):
                stats.inc_value("rsarchive/wayback/skipped/other_host")
                continue
            if mime not in _HTML:
                stats.inc_value("rsarchive/wayback/skipped/not_html")
                continue
            yield self._capture_request(capture["timestamp"], original)
        if resume_key:
            yield self._cdx_request(resume_key)

    # -- the captures ----------------------------------------------------------------------------

    def _capture_request(self, timestamp: str, original: str) -> scrapy.Request:
        return scrapy.Request(
            f"{self.wayback_url}/web/{timestamp}id_/{original}",
            callback=self.parse_capture,
            errback=self.fetch_failed,
            meta={"wayback": (timestamp, original)},
        )

    def parse_capture(self, response: Response) -> Iterator[Page]:
        timestamp, original = response.meta["wayback"]
        # The original answer's headers (the Wayback Machine sends them as X-Archive-Orig-*),
        # but not the transport ones: the body is stored whole and decoded.
        headers: dict[str, list[bytes]] = {}
        for name, values in response.headers.items():
            low = name.decode("latin-1").lower()
            if low.startswith(_ORIG) and low[len(_ORIG) :] not in _TRANSPORT:
                headers[name.decode("latin-1")[len(_ORIG) :]] = values
        headers["Content-Type"] = response.headers.getlist("Content-Type")
        as_archived = response.replace(url=original, headers=headers)
        page = self.page_item(as_archived)
        page.fetched_at = wayback_time(timestamp)
        # What was asked for: the Wayback Machine's copy (its fetch state stays apart from the
        # live page's, and a later run knows which captures came from there).
        page.requested_url = response.url
        self.crawler.stats.inc_value("rsarchive/wayback/captures")
        yield page

    # -- the live site ---------------------------------------------------------------------------

    def stored(self, item: Any) -> None:
        """A capture went through the pipeline: its page is asked for on the live site once the
        captures are in. (A dropped capture, e.g. an empty page, is not.)"""
        if (
            self.live
            and isinstance(item, Page)
            and (item.requested_url or "").startswith(f"{self.wayback_url}/web/")
        ):
            self._to_check.setdefault(item.url)

    def check_live(self) -> None:
        """Once every capture is in (the spider is idle), ask the live site for the pages they
        were of: after them, so its answer is the newest in each history."""
        if not self._to_check:
            return
        urls, self._to_check = list(self._to_check), {}
        held = self.held(urls)
        for url in urls:
            for request in self.article_request(url, held.get(normalize_url(url)), why="live"):
                # A page that now answers 404/410 is still news: parse_article stores it and the
                # pipeline marks the archived article removed.
                request.meta["handle_httpstatus_list"] = [304, 404, 410]
                self.crawler.engine.crawl(request)
        raise DontCloseSpider

    # -- what the archive holds ------------------------------------------------------------------

    def _newest_held(self) -> str | None:
        """The newest capture in scope that this spider stored before, or None."""
        c = m.captures
        query = select(func.max(c.c.fetched_at)).where(
            c.c.requested_url.like(f"{self.wayback_url}/web/%")
        )
        if self.given_url:
            query = query.where(c.c.url == normalize_url(self.scope))
        try:
            with self._archive().connect() as conn:
                return conn.scalar(query)
        except SQLAlchemyError as exc:  # a new archive has no tables before the pipeline opens
            self.logger.info("nothing held yet (%s)", exc.__class__.__name__)
            return None

    def _retry_failed(self) -> Iterator[scrapy.Request]:
        """Captures whose fetch failed in an earlier run (their URL is in the fetch state)."""
        try:
            urls = outstanding(self._archive())
        except SQLAlchemyError:
            return
        prefix = normalize_url(self.wayback_url).rstrip("/") + "/web/"
        for url in urls:
            if not url.startswith(prefix):
                continue
            timestamp, _, original = url[len(prefix) :].partition("id_/")
            # The fetch state keeps URLs normalised, which squeezes the embedded "https://" to
            # "https:/" (and drops a trailing slash: the Wayback Machine looks captures up by
            # their canonical key, with or without it).
            original = re.sub(r"^(https?):/(?!/)", r"\1://", original)
            if timestamp.isdigit() and same_site(original, self.site_url):
                self.crawler.stats.inc_value("rsarchive/wayback/retried")
                yield self._capture_request(timestamp, original)
