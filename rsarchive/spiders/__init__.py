"""Spiders decide what to fetch; the item pipeline decides what it means.

``RebelMouseSpider`` holds what every rsarchive spider shares: the configured site, start-URL
handling, turning a response into a ``Page`` item, and asking the archive what it holds (the
fetch state) before fetching an article again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import scrapy
from parsel import Selector
from scrapy.exceptions import CloseSpider, IgnoreRequest
from scrapy.http import Headers, HtmlResponse, Response, TextResponse
from scrapy.responsetypes import responsetypes
from scrapy.spidermiddlewares.httperror import HttpError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from twisted.python.failure import Failure

from rsarchive import signals as rs_signals
from rsarchive.archive import fetchstate, make_engine, utc_now_iso
from rsarchive.archive.engine import as_database_url
from rsarchive.archive.fetchstate import Held
from rsarchive.config import SettingError, get_float, get_int, get_site_url
from rsarchive.dates import latest_plausible, plausible
from rsarchive.extract.depth import MAX_DEPTH, flatten_markup, too_deep
from rsarchive.extract.loadmore import (
    FeedBlock,
    LoadMorePage,
    keep_feed_teasers,
    parse_load_more,
)
from rsarchive.extract.text import trust_utf8
from rsarchive.items import UNPARSED, FeedPage, FetchOutcome, Page
from rsarchive.middlewares import FetchRefused
from rsarchive.urls import normalize_url, same_site, site_host

# How robots.txt refusals read (Scrapy's, and rsarchive.middlewares' when it is unavailable).
_ROBOTS = ("Forbidden by robots.txt", "robots.txt unavailable")


class RebelMouseSpider(scrapy.Spider):
    """Base class: the site comes from RSARCHIVE_SITE_URL, pages become ``Page`` items."""

    site_url: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Recorded in crawl_runs so a run can be repeated.
        self.args = {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float))}
        self._scheduled: set[str] = set()  # articles requested in this run
        self._new: set[str] = set()  # ... of them, those the archive did not hold (or failed)

    #: Why the settings cannot be used (``configure`` failed): the run closes at once with
    #: ``config_error`` (exit code 78) and fetches nothing.
    config_error: str | None = None
    parse_elsewhere = False

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> RebelMouseSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.site_url = ""
        spider.allowed_domains = []
        try:
            spider.configure(crawler.settings)
        except SettingError as exc:
            spider.config_error = str(exc)
        fixtures = crawler.settings.get("RSARCHIVE_FIXTURE_SITE")
        if fixtures:
            # Pages from the bundled fixture site, not the web: say so in crawl_runs.args.
            spider.args["fixture_site"] = str(fixtures)
        return spider

    def configure(self, settings: Any) -> None:
        """Read and check the settings this spider uses (raise ``SettingError``); subclasses
        extend it. Run before the crawl starts, so a bad value fetches nothing."""
        self.site_url = get_site_url(settings)
        get_float(settings, "RSARCHIVE_PROGRESS_INTERVAL")  # read by the progress extension
        # With extraction processes, a page the spider needs no tree of is parsed only there.
        self.parse_elsewhere = get_int(settings, "RSARCHIVE_EXTRACT_PROCESSES", minimum=0) > 0
        # The offsite middleware keeps every request (redirects included) on this host.
        self.allowed_domains = [site_host(self.site_url).split(":")[0]]

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.config_error:
            self.logger.error("configuration error: %s", self.config_error)
            self.crawler.stats.set_value("rsarchive/config_error", self.config_error)
            raise CloseSpider("config_error")
        for request in self._start_requests():
            yield request
        # Arguments the spider refused (it logged why): the run fails, as for config_error.
        if self.crawler.stats.get_value("rsarchive/usage_error"):
            raise CloseSpider("usage_error")

    def _start_requests(self) -> Iterator[scrapy.Request]:
        raise NotImplementedError

    def site_link(self, url: str) -> str | None:
        """An absolute URL on the configured site (relative ones are joined), else None."""
        url = urljoin(self.site_url + "/", url.strip())
        if not same_site(url, self.site_url):
            return None
        parts = urlsplit(url)
        if "@" in parts.netloc:
            # Credentials in a URL are never sent (the site needs none).
            self.logger.warning("dropped the credentials from a URL on %s", parts.hostname)
            url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        return url

    def page_item(self, response: Response, *, tree: bool = False) -> Page:
        """The page to archive. ``tree``: the spider reads the page itself (``page.selector``),
        so it is parsed here even when the split step parses pages elsewhere."""
        response = fix_encoding(response)
        headers = response_headers(response)
        redirects = response.meta.get("redirect_urls") or [response.url]
        selector: Any
        if self.parse_elsewhere and not tree and isinstance(response, HtmlResponse):
            selector = UNPARSED
        else:
            selector, flattened = page_selector(response)
            if flattened:
                note_deep_tree(response.url, self.crawler)
        return Page(
            url=response.url,
            status=response.status,
            fetched_at=utc_now_iso(),
            requested_url=redirects[0],
            content_type=headers.get("Content-Type"),
            headers=headers,
            body=response.body,
            # The tree Scrapy parses for the spider; the split step reuses it.
            selector=selector,
        )

    def read_load_more(
        self, response: Response, block: FeedBlock, position: int
    ) -> LoadMorePage | None:
        """The teasers of a load-more answer (positions from ``position``), or None when the
        answer is unusable (logged and counted: not HTTP 200, not the endpoint's JSON)."""
        stats = self.crawler.stats
        if response.status != 200:
            self.logger.error("load-more answered HTTP %d: %s", response.status, response.url)
            stats.inc_value("rsarchive/fetch_failed")
            return None
        try:
            more = parse_load_more(response.body, block.page_key, position)
        except ValueError as exc:
            self.logger.error("unreadable load-more answer %s: %s", response.url, exc)
            stats.inc_value("rsarchive/dropped/feed_invalid")
            return None
        if more.skipped:
            stats.inc_value("rsarchive/feed_posts_skipped", more.skipped)
        return more

    def feed_page_item(
        self,
        response: Response,
        page_url: str,
        position: int,
        more: LoadMorePage,
        shown: Collection[str],
    ) -> FeedPage:
        """A load-more answer as an item: the teasers to store (``keep_feed_teasers``) and the
        answer as received, with what a replay needs to store them the same way."""
        headers = response_headers(response)
        return FeedPage(
            url=response.url,
            page_url=page_url,
            fetched_at=utc_now_iso(),
            teasers=keep_feed_teasers(more.teasers, shown, self.site_url),
            status=response.status,
            requested_url=(response.meta.get("redirect_urls") or [response.url])[0],
            content_type=headers.get("Content-Type"),
            headers=headers,
            body=response.body,
            position=position,
            repeats=list(dict.fromkeys(t.url for t in more.teasers if t.url in shown)),
        )

    def fetch_failed(self, failure: Failure) -> None:
        """An article or page could not be fetched: count it and record it for the next run."""
        request = failure.request  # type: ignore[attr-defined]
        if self._not_fetched(failure):
            return
        self.feed_failed(failure)
        response = failure.value.response if failure.check(HttpError) else None
        self.outcome(
            FetchOutcome(
                url=request.url,
                status=response.status if response is not None else None,
                error=failure.getErrorMessage()[:500] or failure.type.__name__,
                feed_date=request.meta.get("feed_date"),
            )
        )

    def feed_failed(self, failure: Failure) -> None:
        """A feed, listing or sitemap could not be fetched (the next run walks it again)."""
        request = failure.request  # type: ignore[attr-defined]
        if self._not_fetched(failure):
            return
        self.crawler.stats.inc_value("rsarchive/fetch_failed")
        if failure.check(FetchRefused):
            refused: FetchRefused = failure.value
            self.logger.warning("could not fetch %s: %s", request.url, refused)
            self.crawler.stats.inc_value(f"rsarchive/fetch_failed/{refused.reason}")
            return
        self.logger.error("could not fetch %s: %s", request.url, failure.getErrorMessage())

    def _not_fetched(self, failure: Failure) -> bool:
        """A request we chose not to send (robots.txt forbids it): no failure, nothing recorded."""
        # Every other IgnoreRequest (an error status after the retries, a refused redirect, a
        # body cut short or too large) is a failure.
        if not failure.check(IgnoreRequest) or not str(failure.value).startswith(_ROBOTS):
            return False
        request = failure.request  # type: ignore[attr-defined]
        self.logger.info("not fetched: %s (%s)", request.url, failure.getErrorMessage())
        self.crawler.stats.inc_value("rsarchive/not_fetched/ignored")
        return True

    def outcome(self, outcome: FetchOutcome) -> None:
        self.crawler.signals.send_catch_log(rs_signals.fetch_outcome, outcome=outcome)

    # -- incremental fetching: what does the archive hold? -------------------------------------

    _state: Engine | None = None
    # Held articles last asked for before this time (ISO UTC) are asked again, conditionally.
    recheck_before: str | None = None

    def _archive(self) -> Engine:
        # Our own engine, for reads only; the store pipeline has created the schema by now.
        if self._state is None:
            url = as_database_url(self.crawler.settings.get("RSARCHIVE_DATABASE_URL"))
            self._state = make_engine(url)
        return self._state

    def closed(self, reason: str) -> None:
        if self._state is not None:
            self._state.dispose()

    def held(self, urls: Iterable[str]) -> dict[str, Held]:
        """What the archive holds for these URLs (a read; writes stay in the pipeline)."""
        try:
            return fetchstate.held(self._archive(), urls)
        except SQLAlchemyError as exc:
            # The store pipeline reports an unusable database; here it only means "unknown".
            self.logger.error("cannot read the fetch state: %s", exc.__class__.__name__)
            return {}

    def outstanding_requests(self) -> Iterator[scrapy.Request]:
        """The pages whose last fetch failed: every feed or sitemap run tries them again."""
        try:
            urls = fetchstate.outstanding(self._archive())
        except SQLAlchemyError as exc:
            self.logger.error("cannot read the fetch state: %s", exc.__class__.__name__)
            return
        if urls:
            self.logger.info("retrying %d pages that failed before", len(urls))
            self.crawler.stats.set_value("rsarchive/retried_failures", len(urls))
        held = self.held(urls)
        for url in urls:
            if self.site_link(url):
                yield from self.article_request(url, held.get(url), why="failed_before")

    def article_request(
        self, url: str, held: Held | None, feed_date: str | None = None, why: str = "new"
    ) -> Iterator[scrapy.Request]:
        """One request per article and run; conditional when we hold validators for it."""
        key = normalize_url(url)
        if key in self._scheduled:
            return
        self._scheduled.add(key)
        if why in ("new", "failed_before"):
            self._new.add(key)
        self.crawler.stats.inc_value(f"rsarchive/articles_requested/{why}")
        headers = {}
        if held is not None and held.archived:
            if held.etag:
                headers["If-None-Match"] = held.etag
            if held.last_modified:
                headers["If-Modified-Since"] = held.last_modified
        yield scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.fetch_failed,
            headers=headers or None,
            meta={"feed_date": feed_date},
        )

    def consider(
        self, url: str, date: str | None, held: dict[str, Held]
    ) -> Iterator[scrapy.Request]:
        """Fetch an article that is new, failed before, or dated newer than what we hold.

        ``held`` is what ``self.held`` answered for a batch of URLs including this one.
        """
        key = normalize_url(url)
        if key in self._scheduled:
            return
        if date and not plausible(date, latest_plausible()):
            # A lastmod of 9999 would make the page look newer than our copy on every run.
            self.logger.warning(
                "implausible date %s for %s in a feed or sitemap: ignored", date, url
            )
            self.crawler.stats.inc_value("rsarchive/implausible_date")
            date = None
        known = held.get(key)
        if known is None:
            yield from self.article_request(url, known, date, "new")
        elif not known.settled:
            yield from self.article_request(url, known, date, "failed_before")
        elif known.stale(date):
            yield from self.article_request(url, known, date, "newer_date")
        elif self.recheck_before and not known.checked_since(self.recheck_before):
            # Edits leave RSS dates alone: ask again now and then (a 304 costs no body).
            yield from self.article_request(url, known, date, "recheck")
        else:
            self.crawler.stats.inc_value("rsarchive/articles_skipped_unchanged")

    def is_new(self, url: str, held: dict[str, Held]) -> bool:
        """Not in the archive when this run started (or failed before), whatever this run did
        with it since (a recheck or a newer date is not news)."""
        key = normalize_url(url)
        known = held.get(key)
        return known is None or not known.settled or key in self._new

    def parse_article(self, response: Response) -> Iterator[Page]:
        if response.status == 304:
            # Not modified: a success, not a drop.
            self.crawler.stats.inc_value("rsarchive/not_modified")
            requested = (response.meta.get("redirect_urls") or [response.url])[0]
            etag = response.headers.get("ETag")
            self.outcome(
                FetchOutcome(
                    url=requested,
                    status=304,
                    etag=etag.decode("latin-1") if etag else None,
                    feed_date=response.meta.get("feed_date"),
                )
            )
            return
        page = self.page_item(response)
        page.feed_date = response.meta.get("feed_date")
        yield page


def note_deep_tree(url: str, crawler: Any) -> None:
    """Log and count a page read flattened (``rsarchive.extract.depth``), as the spider's."""
    crawler.spider.logger.warning(
        "deep_tree: %s nests tags deeper than %d levels: read with the deeper tags left out "
        "(their text kept)",
        url,
        MAX_DEPTH,
    )
    crawler.stats.inc_value("rsarchive/page_warning/deep_tree")


def response_headers(response: Response) -> dict[str, str]:
    """The response headers as text, repeated ones joined (as a capture keeps them)."""
    return {
        k.decode("latin-1"): b", ".join(v).decode("latin-1") for k, v in response.headers.items()
    }


def page_selector(response: Response) -> tuple[Selector | None, bool]:
    """The parsed tree of an HTML answer (None for anything else: JSON, XML, images), and
    whether the page had to be flattened first (``rsarchive.extract.depth``)."""
    if not isinstance(response, HtmlResponse):
        return None, False
    selector = response.selector
    if not too_deep(selector.root):
        return selector, False
    return Selector(text=flatten_markup(response.text), type="html"), True


def selector_of(
    url: str, status: int, headers: dict[str, str], body: bytes
) -> tuple[Selector | None, bool]:
    """``page_selector`` of the response these parts make (a capture, or a page sent to an
    extraction process): the same response class, encoding and tree as in the crawl."""
    # As Headers: responsetypes looks up b"Content-Type", which a plain dict of str never holds,
    # and would guess from the body instead (a byte-by-byte scan, ~1/3 of a parse).
    cls = responsetypes.from_args(headers=Headers(headers), url=url, body=body)
    return page_selector(fix_encoding(cls(url=url, status=status, headers=headers, body=body)))


def fix_encoding(response: Response) -> Response:
    """Trust the bytes over a server that labels a UTF-8 page as Latin-1.

    Runs before ``response.selector`` is first touched, so the page is still parsed only once.
    """
    if isinstance(response, TextResponse) and trust_utf8(response.encoding, response.body):
        return response.replace(encoding="utf-8")
    return response
