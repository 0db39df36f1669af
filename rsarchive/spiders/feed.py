"""The `feed` spider: archive what is new on the site since the last run.

scrapy crawl feed
scrapy crawl feed -a listings=/europe/,/tag/nato/      # more listing pages to walk this run

It reads the RSS feeds, the home page and its load-more feed, and the listing pages of
RSARCHIVE_FEED_LISTINGS (each followed through /page/N/). An article is fetched when the archive
does not hold it, when its last fetch failed, when a feed dates it newer than what we hold, or
when it is named again and was last asked for more than RSARCHIVE_FEED_RECHECK_HOURS ago (the
last two with If-None-Match / If-Modified-Since: a 304 costs no body). A listing or feed stops at
the first page that brings nothing new ("caught up") or at RSARCHIVE_FEED_MAX_PAGES pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response

from rsarchive.config import get_float, get_int
from rsarchive.extract.feeds import parse_feed
from rsarchive.extract.loadmore import FeedBlock, feed_block
from rsarchive.items import FeedPage, Page
from rsarchive.spiders import RebelMouseSpider
from rsarchive.urls import normalize_url


@dataclass
class Walk:
    """One listing (or the home page) and its further pages, walked in this run."""

    start: str
    pages: int = 0
    exclude: list[str] = field(default_factory=list)  # post ids the load-more feed has shown
    caught_up: bool = False
    shown: set[str] = field(default_factory=set)  # normalised post URLs this walk has seen


def _paths(value: str | Iterable[str] | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() for v in value if v and v.strip()]


class FeedSpider(RebelMouseSpider):
    name = "feed"
    # 304: not modified since our copy; 404/410: an archived article is gone.
    handle_httpstatus_list: ClassVar[list[int]] = [304, 404, 410]

    def __init__(self, listings: str | None = None, **kwargs: Any) -> None:
        super().__init__(listings=listings, **kwargs)
        self.extra_listings = _paths(listings)
        self.listings_seen: set[str] = set()

    def configure(self, settings: Any) -> None:
        super().configure(settings)
        self.max_pages = get_int(settings, "RSARCHIVE_FEED_MAX_PAGES", minimum=1)
        self.recheck_hours = get_float(settings, "RSARCHIVE_FEED_RECHECK_HOURS", minimum=0)

    def _start_requests(self) -> Iterator[scrapy.Request]:
        settings = self.crawler.settings
        if self.recheck_hours > 0:
            since = datetime.now(UTC) - timedelta(hours=self.recheck_hours)
            self.recheck_before = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        yield from self.outstanding_requests()
        for path in _paths(settings.get("RSARCHIVE_FEED_URLS")):
            url = self.site_link(path)
            if url:
                yield scrapy.Request(url, callback=self.parse_rss, errback=self.feed_failed)
        listings = ["/", *_paths(settings.get("RSARCHIVE_FEED_LISTINGS")), *self.extra_listings]
        for path in dict.fromkeys(listings):
            url = self.site_link(path)
            if url is None:
                self.logger.error("skipping listing %s: not on the configured site", path)
                continue
            yield from self._listing_request(url, Walk(normalize_url(url)))

    # -- RSS -----------------------------------------------------------------------------------

    def parse_rss(self, response: Response) -> Iterator[scrapy.Request]:
        entries = [e for e in parse_feed(response.body, response.url) if self.site_link(e.url)]
        if not entries:
            self.logger.warning("no items in the feed %s", response.url)
        self.crawler.stats.inc_value("rsarchive/feed_items", len(entries))
        held = self.held(e.url for e in entries)
        for entry in entries:
            yield from self.consider(entry.url, entry.date, held)

    # -- listings and the load-more feed -------------------------------------------------------

    def _listing_request(self, url: str, walk: Walk) -> Iterator[scrapy.Request]:
        key = normalize_url(url)
        if key in self.listings_seen:
            # A listing that links back to a page already walked: a loop, not news.
            self.crawler.stats.inc_value("rsarchive/feed_loop_skipped")
            self.logger.info("listing %s already walked in this run: not again", url)
            return
        if not self._room(walk):
            return
        self.listings_seen.add(key)
        walk.pages += 1
        yield scrapy.Request(
            url, callback=self.parse_listing, errback=self.feed_failed, cb_kwargs={"walk": walk}
        )

    def _room(self, walk: Walk) -> bool:
        if walk.pages < self.max_pages:
            return True
        self.crawler.stats.inc_value("rsarchive/feed_capped")
        self.logger.warning(
            "%s: stopped after %d pages (RSARCHIVE_FEED_MAX_PAGES); older posts there are not "
            "walked in this run",
            walk.start,
            walk.pages,
        )
        return False

    def parse_listing(self, response: Response, walk: Walk) -> Iterator[Page | scrapy.Request]:
        # The listing page itself is archived too: its teasers are a sighting of the feed.
        page = self.page_item(response, tree=True)
        selector = page.selector  # kept: the store step lets go of the item's tree
        yield page
        if response.status != 200 or selector is None:
            return
        block = feed_block(selector, response.url)
        walk.shown.update(normalize_url(u) for u in block.post_urls)
        yield from self._fetch_new(walk, [u for u in block.post_urls if self.site_link(u)])
        if walk.caught_up:
            return
        if block.next_listing and self.site_link(block.next_listing):
            yield from self._listing_request(block.next_listing, walk)
        elif block.has_more:
            walk.exclude.extend(block.shown_post_ids)
            yield from self._load_more(block, block.next_page, block.teaser_count, walk)

    def _fetch_new(self, walk: Walk, urls: list[str]) -> Iterator[scrapy.Request]:
        """Requests for the articles of one page the archive does not hold (or failed before).

        Listings carry no change date, so an article we hold is not fetched from them. Sets
        ``walk.caught_up`` when the page brought nothing new: the walk ends there.
        """
        held = self.held(urls)
        # Judged before this page's requests are made: what this run already fetched is new.
        new = [u for u in urls if self.is_new(u, held)]
        for url in urls:
            yield from self.consider(url, None, held)
        walk.caught_up = not new
        if walk.caught_up:
            self.logger.info("%s: caught up (a page with nothing new)", walk.start)
            self.crawler.stats.inc_value("rsarchive/feed_caught_up")

    def _load_more(
        self, block: FeedBlock, page: int, position: int, walk: Walk
    ) -> Iterator[scrapy.Request]:
        if not self._room(walk):
            return
        url = block.load_more_url(self.site_url, page, walk.exclude)
        if url is None:
            return
        walk.pages += 1
        yield scrapy.Request(
            url,
            callback=self.parse_feed_page,
            errback=self.feed_failed,
            cb_kwargs={"block": block, "page": page, "position": position, "walk": walk},
        )

    def parse_feed_page(
        self, response: Response, block: FeedBlock, page: int, position: int, walk: Walk
    ) -> Iterator[FeedPage | scrapy.Request]:
        more = self.read_load_more(response, block, position)
        if more is None:
            return
        # Posts this walk has shown already (a feed that ignores exclude_post_ids) are no news;
        # the answer is archived (as a capture) all the same.
        item = self.feed_page_item(response, block.page_key, position, more, walk.shown)
        teasers = item.teasers
        walk.shown.update(t.url for t in teasers)
        yield item
        if not teasers and more.teasers:
            self.logger.info("%s: the load-more feed repeats itself; stopping", walk.start)
            self.crawler.stats.inc_value("rsarchive/feed_loop_skipped")
            return
        walk.exclude.extend(more.post_ids)
        yield from self._fetch_new(walk, [t.url for t in teasers])
        if not walk.caught_up and more.has_more:
            yield from self._load_more(block, page + 1, position + len(more.teasers), walk)
