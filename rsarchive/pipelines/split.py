"""Split step: a fetched Page becomes its main Article (or none) plus its keep-reading Teasers.

In line by default. With ``RSARCHIVE_EXTRACT_PROCESSES=N`` (N > 0) the split runs on N worker
processes instead, fed with the page's bytes, so that parsing never holds up the downloader on
the reactor thread; a spider that needs no tree of a page itself (no feed to follow: sitemap,
Wayback, ``feed_pages=0``) leaves it unparsed (``items.UNPARSED``), and it is parsed only there.
Worth it for long crawls on a machine with cores to spare; a short crawl spends more starting
the processes than it saves. A worker builds the tree exactly as the spider would
(``spiders.selector_of``), so what is stored does not depend on where the page was read. If the
workers die, the run goes on in line and says so.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from rsarchive.archive.faults import reached
from rsarchive.config import get_int
from rsarchive.extract import parse_page, rebelmouse
from rsarchive.items import UNPARSED, Page, ParsedPage
from rsarchive.spiders import note_deep_tree, selector_of

logger = logging.getLogger(__name__)


class SplitPipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        # A bad value is reported by the spider's own check (configure) before any request.
        try:
            self.processes = get_int(crawler.settings, "RSARCHIVE_EXTRACT_PROCESSES", minimum=0)
        except ValueError:
            self.processes = 0
        self._pool: ProcessPoolExecutor | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> SplitPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        if self.processes > 0:
            # forkserver: workers are forked from a clean process, never from this one (which
            # runs threads: the reactor's, the store's writer).
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["rsarchive.pipelines.split"])
            self._pool = ProcessPoolExecutor(self.processes, mp_context=context)

    def close_spider(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def process_item(self, item: Any) -> Any:
        # Only HTML pages are parsed; clean drops the rest with a reason.
        if not isinstance(item, Page) or item.selector is None or not item.body:
            return item
        if self._pool is not None and _running_loop():
            return self._split_elsewhere(item)  # Scrapy awaits it
        return self._fill(item, self._split_here(item))

    async def _split_elsewhere(self, item: Page) -> Page:
        pool = self._pool
        parsed = None
        if pool is not None:
            try:
                future = pool.submit(split_bytes, item.url, item.status, item.headers, item.body)
                parsed, flattened = await asyncio.wrap_future(future)
                if flattened and item.selector is UNPARSED:  # else the spider said it
                    note_deep_tree(item.url, self.crawler)
            except BrokenProcessPool as exc:
                if self._pool is pool:  # the first page to learn it says so
                    self._pool = None
                    pool.shutdown(wait=False, cancel_futures=True)
                    logger.error(
                        "the extraction processes stopped (%s): the rest of the run splits "
                        "pages in line",
                        exc,
                    )
                    self.stats.inc_value("rsarchive/extract_processes_lost")
        return self._fill(item, parsed or self._split_here(item))

    def _split_here(self, item: Page) -> ParsedPage:
        if item.selector is UNPARSED:  # the extraction processes are gone: parse it here
            selector, flattened = selector_of(item.url, item.status, item.headers, item.body)
            if flattened:
                note_deep_tree(item.url, self.crawler)
            item.selector = selector
            if selector is None:  # not HTML after all: clean drops it (not_html)
                return ParsedPage()
        return parse_page(item.selector, item.url)

    def _fill(self, item: Page, parsed: ParsedPage) -> Page:
        self._note(parsed, item.url)
        item.article = parsed.article
        # Read at call time: a re-parse under a new parser version records that version.
        item.parser_version = rebelmouse.PARSER_VERSION
        item.teasers = parsed.teasers
        return item

    def _note(self, parsed: ParsedPage, url: str) -> None:
        for field in parsed.drift:
            if field == "whole_page":
                logger.warning(
                    "layout_drift: no RebelMouse post block on %s: read by the generic extractor",
                    url,
                )
            else:
                logger.warning("layout_drift: %s came from a fallback selector on %s", field, url)
            self.stats.inc_value("rsarchive/layout_drift")
            self.stats.inc_value(f"rsarchive/layout_drift/{field}")
        for warning in parsed.warnings:
            logger.info("%s on %s", warning, url)
            self.stats.inc_value(f"rsarchive/page_warning/{warning}")


def _running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a Twisted reactor without asyncio: split in line
        return False
    return True


def split_bytes(
    url: str, status: int, headers: dict[str, str], body: bytes
) -> tuple[ParsedPage | None, bool]:
    """``parse_page`` of a page given as its response parts (in an extraction process), and
    whether its tree had to be flattened first."""
    reached("extract")
    selector, flattened = selector_of(url, status, headers, body)
    return (None if selector is None else parse_page(selector, url)), flattened
