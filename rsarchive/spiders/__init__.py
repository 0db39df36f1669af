"""Spiders decide what to fetch; the item pipeline decides what it means.

``RebelMouseSpider`` holds what every rsarchive spider shares: the configured site, start-URL
handling and turning a response into a ``Page`` item.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from rsarchive.archive import utc_now_iso
from rsarchive.extract.text import trust_utf8
from rsarchive.items import Page
from rsarchive.urls import same_site, site_host


class RebelMouseSpider(scrapy.Spider):
    """Base class: the site comes from RSARCHIVE_SITE_URL, pages become ``Page`` items."""

    site_url: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Recorded in crawl_runs so a run can be repeated.
        self.args = {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float))}

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> RebelMouseSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.site_url = crawler.settings.get("RSARCHIVE_SITE_URL").rstrip("/")
        # The offsite middleware keeps every request (redirects included) on this host.
        spider.allowed_domains = [site_host(spider.site_url).split(":")[0]]
        return spider

    def site_link(self, url: str) -> str | None:
        """An absolute URL on the configured site (relative ones are joined), else None."""
        url = urljoin(self.site_url + "/", url.strip())
        return url if same_site(url, self.site_url) else None

    def page_item(self, response: Response) -> Page:
        response = fix_encoding(response)
        headers = {
            k.decode("latin-1"): b", ".join(v).decode("latin-1")
            for k, v in response.headers.items()
        }
        redirects = response.meta.get("redirect_urls") or [response.url]
        return Page(
            url=response.url,
            status=response.status,
            fetched_at=utc_now_iso(),
            requested_url=redirects[0],
            content_type=headers.get("Content-Type"),
            headers=headers,
            body=response.body,
            # The tree Scrapy parses for the spider; the split step reuses it.
            selector=response.selector if isinstance(response, TextResponse) else None,
        )

    def fetch_failed(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        self.logger.error("could not fetch %s: %s", request.url, failure.getErrorMessage())
        self.crawler.stats.inc_value("rsarchive/fetch_failed")


def fix_encoding(response: Response) -> Response:
    """Trust the bytes over a server that labels a UTF-8 page as Latin-1.

    Runs before ``response.selector`` is first touched, so the page is still parsed only once.
    """
    if isinstance(response, TextResponse) and trust_utf8(response.encoding, response.body):
        return response.replace(encoding="utf-8")
    return response
