"""The `article` spider: archive given article pages (each with its keep-reading teasers).

scrapy crawl article -a url=https://responsiblestatecraft.org/some-post/
scrapy crawl article -a urls=URL1,URL2 -a url_file=urls.txt
scrapy crawl article -a url=URL -a feed_pages=3      # 3 more pages of its keep-reading feed
scrapy crawl article -a url=URL -a follow=1          # and the articles its teasers point to
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response

from rsarchive.config import get_int
from rsarchive.extract.loadmore import FeedBlock, feed_block
from rsarchive.items import FeedPage, Page
from rsarchive.spiders import RebelMouseSpider
from rsarchive.urls import normalize_url, page_identity

DEFAULT_FEED_PAGES = 1


class ArticleSpider(RebelMouseSpider):
    name = "article"
    # An archived page that now answers 404/410 is still news to the archive.
    handle_httpstatus_list: ClassVar[list[int]] = [404, 410]

    def __init__(
        self,
        url: str | None = None,
        urls: str | None = None,
        url_file: str | None = None,
        feed_pages: str | int | None = None,
        follow: str | int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            url=url, urls=urls, url_file=url_file, feed_pages=feed_pages, follow=follow, **kwargs
        )
        self.given: list[str] = []
        self.usage_error: str | None = None
        self.feed_pages = DEFAULT_FEED_PAGES
        self.follow = False
        try:
            if feed_pages is not None:
                self.feed_pages = int(feed_pages)
            if follow is not None:
                self.follow = bool(int(follow))
        except ValueError:
            self.usage_error = "feed_pages and follow take a whole number (-a feed_pages=2)"
            return
        if self.feed_pages < 0:
            self.usage_error = "feed_pages cannot be negative"
            return
        self.followed = 0
        if url:
            self.given.append(url)
        if urls:
            self.given.extend(u for u in urls.split(",") if u.strip())
        if url_file:
            try:
                lines = Path(url_file).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                self.usage_error = f"cannot read url_file {url_file}: {exc.strerror}"
                return
            self.given.extend(
                line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
            )
        if not self.given:
            self.usage_error = "no URL given: use -a url=URL, -a urls=U1,U2 or -a url_file=PATH"

    def configure(self, settings: Any) -> None:
        super().configure(settings)
        self.follow_max = get_int(settings, "RSARCHIVE_FOLLOW_MAX", minimum=0)

    def _start_requests(self) -> Iterator[scrapy.Request]:
        stats = self.crawler.stats
        if self.usage_error:
            self.logger.error("article spider: %s", self.usage_error)
            stats.set_value("rsarchive/usage_error", self.usage_error)
            return
        for given in self.given:
            url = self.site_link(given)
            if url is None:
                self.logger.error(
                    "skipping %s: not on the configured site %s (set RSARCHIVE_SITE_URL)",
                    given,
                    self.site_url,
                )
                stats.inc_value("rsarchive/start_url_offsite")
                continue
            key = normalize_url(url)
            if key in self._scheduled:
                # The same page under tracking parameters, a fragment, another case: once.
                self.logger.info("skipping %s: the same page as an earlier start URL", given)
                stats.inc_value("rsarchive/start_url_repeated")
                continue
            self._scheduled.add(key)
            yield scrapy.Request(url, callback=self.parse, errback=self.fetch_failed)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Page | scrapy.Request]:
        page = self.page_item(response, tree=bool(self.follow or self.feed_pages))
        # The tree Scrapy built for the page item: nothing is parsed twice. (Kept here: the
        # store step lets go of the item's tree.)
        selector = page.selector
        yield page
        if response.status != 200 or selector is None:
            return
        if not (self.follow or self.feed_pages):
            return
        block = feed_block(selector, response.url)
        # Its teasers belong to the page they were seen on (see ``rsarchive.urls.page_identity``).
        block.page_key = page_identity(block.page_key, response.url)[0]
        if self.follow:
            yield from self._follow(block.post_urls)
        if self.feed_pages and block.has_more:
            yield from self._load_more(block, block.next_page, block.teaser_count, [], 1)

    def _load_more(
        self, block: FeedBlock, page: int, position: int, exclude: list[str], n: int
    ) -> Iterator[scrapy.Request]:
        url = block.load_more_url(self.site_url, page, exclude)
        if url is None:
            self.logger.info("no load-more parameters on %s: only the HTML feed", block.page_key)
            return
        yield scrapy.Request(
            url,
            callback=self.parse_feed_page,
            errback=self.feed_failed,
            cb_kwargs={"block": block, "page": page, "position": position, "n": n},
            meta={"exclude": exclude},
        )

    def parse_feed_page(
        self, response: Response, block: FeedBlock, page: int, position: int, n: int
    ) -> Iterator[FeedPage | scrapy.Request]:
        more = self.read_load_more(response, block, position)
        if more is None:
            return
        shown = {normalize_url(u) for u in block.post_urls}
        # Every answer is archived (as a capture), even one that brings no new teaser.
        item = self.feed_page_item(response, block.page_key, position, more, shown)
        teasers = item.teasers
        block.post_urls.extend(t.url for t in teasers)
        yield item
        if self.follow:
            yield from self._follow(t.url for t in teasers)
        if not more.has_more or not teasers:
            return
        if n >= self.feed_pages:
            return
        exclude = [*response.meta["exclude"], *more.post_ids]
        yield from self._load_more(block, page + 1, position + len(more.teasers), exclude, n + 1)

    def _follow(self, urls: Any) -> Iterator[scrapy.Request]:
        """One hop from the given pages, at most RSARCHIVE_FOLLOW_MAX articles a run."""
        for url in urls:
            if self.site_link(url) is None or normalize_url(url) in self._scheduled:
                continue
            if self.followed >= self.follow_max:
                if self.followed == self.follow_max:
                    self.logger.warning(
                        "follow: stopped at %d articles (RSARCHIVE_FOLLOW_MAX)", self.follow_max
                    )
                    self.crawler.stats.inc_value("rsarchive/follow_capped")
                    self.followed += 1
                return
            self.followed += 1
            self._scheduled.add(normalize_url(url))
            # parse_article: a followed page is archived, its own teasers are not walked.
            yield scrapy.Request(url, callback=self.parse_article, errback=self.fetch_failed)
