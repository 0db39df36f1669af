"""The `article` spider: archive given article pages (each with its keep-reading teasers).

scrapy crawl article -a url=https://responsiblestatecraft.org/some-post/
scrapy crawl article -a urls=URL1,URL2 -a url_file=urls.txt
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import scrapy
from scrapy.http import Response

from rsarchive.items import Page
from rsarchive.spiders import RebelMouseSpider


class ArticleSpider(RebelMouseSpider):
    name = "article"
    # An archived page that now answers 404/410 is still news to the archive.
    handle_httpstatus_list: ClassVar[list[int]] = [404, 410]

    def __init__(
        self,
        url: str | None = None,
        urls: str | None = None,
        url_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(url=url, urls=urls, url_file=url_file, **kwargs)
        self.given: list[str] = []
        self.usage_error: str | None = None
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

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for request in self._start_requests():
            yield request

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
            yield scrapy.Request(url, callback=self.parse, errback=self.fetch_failed)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Page]:
        yield self.page_item(response)
