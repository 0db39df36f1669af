"""Store step: one transaction per page into the archive, and a crawl_runs row per run."""

from __future__ import annotations

import logging
import os
from typing import Any

from scrapy import signals
from scrapy.exceptions import DropItem
from sqlalchemy.exc import SQLAlchemyError

from rsarchive.archive import Archive
from rsarchive.items import Page

logger = logging.getLogger(__name__)

# finish_reason -> crawl_runs.status
_INTERRUPTED = {"shutdown", "closespider_timeout", "memusage_exceeded", "cancelled"}


class StorePipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.database_url = crawler.settings.get("RSARCHIVE_DATABASE_URL")
        self.archive: Archive | None = None
        self.run_id: int | None = None
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        self.archive = Archive(self.database_url)
        spider = self.crawler.spider
        self.run_id = self.archive.start_run(spider.name, getattr(spider, "args", {}))
        self.stats.set_value("rsarchive/run_id", self.run_id)
        self.stats.set_value("rsarchive/pid", os.getpid())
        logger.info("archiving into %s (run %s)", _redact(self.database_url), self.run_id)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Page) or self.archive is None:
            return item
        try:
            result = self.archive.store_page(item, self.run_id)
        except SQLAlchemyError as exc:
            # The page's transaction was rolled back whole; the run goes on.
            self.stats.inc_value("rsarchive/store_failed")
            logger.error("could not store %s: %s", item.url, exc.__class__.__name__, exc_info=exc)
            raise DropItem(f"database error: {exc.__class__.__name__}") from exc
        inc = self.stats.inc_value
        inc("rsarchive/pages_stored")
        if result.article_status:
            inc(f"rsarchive/articles_{result.article_status}")
        inc("rsarchive/teasers_seen", result.teasers_seen)
        inc("rsarchive/teasers_new", result.teasers_new)
        if result.capture_new:
            inc("rsarchive/captures_new")
        return item

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.archive is None:
            return
        if reason == "finished":
            status = "finished"
        elif reason in _INTERRUPTED:
            status = "interrupted"
        else:
            status = "failed"
        stats = dict(self.stats.get_stats())
        stats["finish_reason"] = reason
        try:
            if self.run_id is not None:
                self.archive.finish_run(
                    self.run_id, status=status, finish_reason=reason, stats=stats
                )
        finally:
            self.archive.close()
            self.archive = None


def _redact(url: str) -> str:
    """A database URL fit for a log line (no password)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"
