"""The `sitemap` spider: back-fill every article the site's sitemaps list.

scrapy crawl sitemap
scrapy crawl sitemap -a sitemap=/feeds/sitemaps/sitemap_1.xml.gz    # one sitemap (or index)

The sitemaps come from the ``Sitemap:`` lines of robots.txt (else ``/sitemap.xml``). Sitemap
indexes, gzip (Scrapy's gunzip, stopping at DOWNLOAD_MAXSIZE) and ``lastmod`` are understood; the
XML is read without its DTD (``rsarchive.extract.sitemap``): no entity is ever expanded, and an
empty or unresolvable ``<loc>`` is skipped with a warning. An article is fetched when the archive
does not hold it, when its last fetch failed, or when its ``lastmod`` is newer than what we hold,
so a re-run over an unchanged site fetches only the sitemaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response
from scrapy.spiders import SitemapSpider as ScrapySitemapSpider
from scrapy.utils.sitemap import sitemap_urls_from_robots

from rsarchive.extract.metadata import parse_date
from rsarchive.extract.sitemap import read_sitemap
from rsarchive.spiders import RebelMouseSpider
from rsarchive.urls import normalize_url

#: Sitemap indexes nest one level (robots.txt -> index -> sitemap); a few more are tolerated, an
#: endless chain of indexes (each listing the next) is not.
MAX_SITEMAP_DEPTH = 4


class SitemapSpider(RebelMouseSpider, ScrapySitemapSpider):
    name = "sitemap"
    # 304: not modified since our copy; 404/410: an archived article is gone.
    handle_httpstatus_list: ClassVar[list[int]] = [304, 404, 410]

    def __init__(self, sitemap: str | None = None, **kwargs: Any) -> None:
        super().__init__(sitemap=sitemap, **kwargs)
        self.given_sitemap = sitemap
        self.sitemaps_seen: set[str] = set()

    def _start_requests(self) -> Iterator[scrapy.Request]:
        yield from self.outstanding_requests()
        if self.given_sitemap:
            url = self.site_link(self.given_sitemap)
            if url is None:
                self.logger.error("sitemap %s is not on the configured site", self.given_sitemap)
                self.crawler.stats.set_value("rsarchive/usage_error", "sitemap off the site")
                return
            yield from self._sitemap_request(url)
            return
        yield scrapy.Request(
            f"{self.site_url}/robots.txt", callback=self.parse_robots, errback=self.feed_failed
        )

    def parse_robots(self, response: Response) -> Iterator[scrapy.Request]:
        urls = [
            u
            for u in sitemap_urls_from_robots(response.body, base_url=response.url)
            if self.site_link(u)
        ]
        if not urls:
            self.logger.info("robots.txt names no sitemap: trying /sitemap.xml")
            urls = [f"{self.site_url}/sitemap.xml"]
        for url in urls:
            yield from self._sitemap_request(url)

    def _sitemap_request(self, url: str, depth: int = 1) -> Iterator[scrapy.Request]:
        if depth > MAX_SITEMAP_DEPTH:
            self.logger.warning(
                "sitemaps nested deeper than %d levels: not reading %s", MAX_SITEMAP_DEPTH, url
            )
            self.crawler.stats.inc_value("rsarchive/dropped/sitemap_too_deep")
            return
        key = normalize_url(url)
        if key in self.sitemaps_seen:
            # An index that lists itself (or a sitemap listed twice): read once.
            self.logger.info("sitemap %s already read in this run: not again", url)
            self.crawler.stats.inc_value("rsarchive/sitemap_loop_skipped")
            return
        self.sitemaps_seen.add(key)
        yield scrapy.Request(
            url,
            callback=self.parse_sitemap,
            errback=self.feed_failed,
            meta={"sitemap_depth": depth},
        )

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        stats = self.crawler.stats
        # Scrapy's own: XML as is, gzip unpacked up to DOWNLOAD_MAXSIZE (None beyond it).
        body = self._get_sitemap_body(response) if response.status == 200 else None
        if not body:
            self.logger.error("not a readable sitemap (or larger than allowed): %s", response.url)
            stats.inc_value("rsarchive/dropped/sitemap_invalid")
            return
        sitemap = read_sitemap(body)
        entries = sitemap.entries
        for why in sitemap.skipped:
            self.logger.warning("skipping <loc> in %s: %s", response.url, why)
            stats.inc_value("rsarchive/sitemap_loc_skipped")
        stats.inc_value("rsarchive/sitemaps_read")
        if sitemap.type == "sitemapindex":
            for entry in entries:
                url = self.site_link(entry.get("loc") or "")
                if url:
                    depth = response.meta.get("sitemap_depth", 1) + 1
                    yield from self._sitemap_request(url, depth)
            return
        if sitemap.type != "urlset":
            self.logger.error("not a sitemap (root <%s>): %s", sitemap.type, response.url)
            stats.inc_value("rsarchive/dropped/sitemap_invalid")
            return
        listed: dict[str, str | None] = {}
        for entry in entries:
            url = self.site_link(entry.get("loc") or "")
            if url:
                listed.setdefault(url, parse_date(entry.get("lastmod")))
        stats.inc_value("rsarchive/sitemap_urls", len(listed))
        held = self.held(listed)
        for url, lastmod in listed.items():
            yield from self.consider(url, lastmod, held)

    # Scrapy's SitemapSpider wants a ``parse``; every article goes through ``parse_article``.
    def parse(self, response: Response, **kwargs: Any) -> Any:
        return self.parse_article(response)
