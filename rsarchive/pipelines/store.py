"""Store step: one transaction per page into the archive, and a crawl_runs row per run.

Writes run on one dedicated writer thread (``pipelines/writer.py``). The reactor never waits on
SQLite (a database locked by a reader may hold a write for up to the busy timeout), the next page
is parsed while the previous one is committed, and the pages that queue up meanwhile share the
next commit (each still whole or not at all).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from scrapy import signals
from scrapy.exceptions import CloseSpider, DropItem
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from rsarchive import signals as rs_signals
from rsarchive.archive import Archive, SchemaError, StoreResult, fetchstate
from rsarchive.archive.engine import as_database_url
from rsarchive.archive.errors import describe, unwritable
from rsarchive.archive.runs import close_dead_runs
from rsarchive.items import FeedPage, FetchOutcome, Page
from rsarchive.outcome import GONE_ARCHIVED, STORAGE_ERROR, exit_code, human_summary, run_status
from rsarchive.pipelines.writer import GroupWriter
from rsarchive.urls import normalize_url

logger = logging.getLogger(__name__)

T = TypeVar("T")


class StorePipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        # A plain path is a SQLite file, as for `rsarchive --db`.
        self.database_url = as_database_url(crawler.settings.get("RSARCHIVE_DATABASE_URL"))
        self.archive: Archive | None = None
        self.run_id: int | None = None
        # Why the archive takes no more writes (a full disk, an I/O error): the run stops.
        self.unwritable: str | None = None
        self._closing: Any = None
        # One thread: SQLite takes one writer at a time, and pages commit in arrival order.
        self.writer = GroupWriter()
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(self.item_error, signal=signals.item_error)
        crawler.signals.connect(self.spider_error, signal=signals.spider_error)
        crawler.signals.connect(self.fetch_outcome, signal=rs_signals.fetch_outcome)

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        spider = self.crawler.spider
        try:
            self.archive, self.run_id = self.writer.submit(
                _open, self.database_url, spider.name, getattr(spider, "args", {})
            ).result()
        except SchemaError as exc:
            # An old schema would make every write fail (or worse, half-work): stop before any
            # request, naming the command that fixes it.
            logger.error("%s", exc)
            self.stats.set_value("rsarchive/schema_error", str(exc))
            raise CloseSpider("schema_error") from exc
        except (SQLAlchemyError, OSError, ValueError) as exc:
            # Crawling without a place to store pages would lose them all: stop before any request.
            reason = getattr(exc, "orig", None) or exc
            logger.error(
                "cannot open the archive database %s: %s (set RSARCHIVE_DATABASE_URL)",
                _redact(self.database_url),
                reason,
            )
            self.stats.set_value("rsarchive/database_error", str(reason))
            raise CloseSpider("database_error") from exc
        self.writer.archive = self.archive
        self.stats.set_value("rsarchive/run_id", self.run_id)
        self.stats.set_value("rsarchive/pid", os.getpid())
        logger.info("archiving into %s (run %s)", _redact(self.database_url), self.run_id)

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, FeedPage) and self.archive is not None:
            return await self._store_feed_page(item)
        if not isinstance(item, Page) or self.archive is None:
            return item
        # The parsed tree is not needed past this point; let it go before the page waits.
        item.selector = None
        result = await self._on_writer(self.archive.store_page, item, self.run_id, url=item.url)
        self._count(result)
        return item

    async def _store_feed_page(self, item: FeedPage) -> FeedPage:
        assert self.archive is not None
        result = await self._on_writer(
            self.archive.store_feed_page, item, self.run_id, url=item.url
        )
        self.stats.inc_value("rsarchive/feed_pages_stored")
        self.stats.inc_value("rsarchive/teasers_seen", result.teasers_seen)
        self.stats.inc_value("rsarchive/teasers_new", result.teasers_new)
        if result.capture_new:
            self.stats.inc_value("rsarchive/captures_new")
        return item

    async def _on_writer(self, fn: Callable[..., T], *args: Any, url: str) -> T:
        """``fn(*args)`` on the writer thread; a database error drops the item of ``url``."""
        if self.unwritable is not None:  # stopping: the pages still coming are not stored
            self.stats.inc_value("rsarchive/store_failed")
            raise DropItem(f"not stored: {self.unwritable}")
        try:
            future = self.writer.submit_page(fn, *args)
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # a Twisted reactor without asyncio: wait here
                return future.result()
            return await asyncio.wrap_future(future)
        except SQLAlchemyError as exc:
            # The page's transaction was rolled back whole.
            self.stats.inc_value("rsarchive/store_failed")
            why = unwritable(exc)
            if why is not None:  # no later page could be stored either: stop now
                self._stop(why, url)
                raise DropItem(f"not stored: {why}") from exc
            # A failure of this page only (a lock held past the busy timeout): the run goes on,
            # the next run fetches the page again. A traceback only for what may be a bug.
            reason = describe(exc)
            if self.stats.get_value("rsarchive/store_error") is None:  # the first one
                self.stats.set_value("rsarchive/store_error", f"{url}: {reason}")
            logger.error(
                "could not store %s: %s", url, reason,
                exc_info=None if isinstance(exc, OperationalError) else exc,
            )  # fmt: skip
            raise DropItem(f"database error: {reason}") from exc

    def _stop(self, why: str, url: str) -> None:
        """Stop the run at the first write the archive cannot take (in the reactor thread)."""
        if self.unwritable is not None:
            return
        self.unwritable = why
        self.stats.set_value(f"rsarchive/{STORAGE_ERROR}", why)
        logger.error(
            "cannot write to the archive: %s (storing %s); stopping the run: what was "
            "committed stays, the pages not stored are fetched by the next run",
            why,
            url,
        )
        engine = getattr(self.crawler, "engine", None)
        if engine is not None:  # None: the pipeline driven on its own (rsarchive's tests)
            from scrapy.utils.defer import deferred_from_coro

            self._closing = deferred_from_coro(engine.close_spider_async(reason=STORAGE_ERROR))

    def _failed_in_writer(self, exc: SQLAlchemyError, what: str) -> None:
        """A background write failed (writer thread): log it, or stop if no write can succeed."""
        why = unwritable(exc)
        if why is None:
            logger.error("could not %s: %s", what, exc)
            return
        from twisted.internet import reactor

        reactor.callFromThread(self._stop, why, what)

    def fetch_outcome(self, outcome: FetchOutcome) -> None:
        """A 304 or a failed request: remember it for the next run (on the writer thread)."""
        if self.archive is not None and self.unwritable is None:
            self._record(outcome)

    def _record(self, outcome: FetchOutcome) -> None:
        assert self.archive is not None
        future = self.writer.submit(fetchstate.record, self.archive.engine, outcome)
        future.add_done_callback(self._recorded)

    def _recorded(self, future: Any) -> None:
        try:
            future.result()
        except SQLAlchemyError as exc:
            self._failed_in_writer(exc, "record the fetch state")

    def _count(self, result: StoreResult) -> None:
        inc = self.stats.inc_value
        inc("rsarchive/pages_stored")
        if result.article_status:
            inc(f"rsarchive/articles_{result.article_status}")
        inc("rsarchive/teasers_seen", result.teasers_seen)
        inc("rsarchive/teasers_new", result.teasers_new)
        if result.capture_new:
            inc("rsarchive/captures_new")

    def item_dropped(self, item: Any, response: Any, exception: BaseException) -> None:
        """An archived article that now answers 404/410 is marked removed, never deleted."""
        if not isinstance(item, Page) or self.archive is None or self.unwritable is not None:
            return
        gone = item.status in (404, 410)
        # A page answering 404/410 is settled; any other drop is retried by the next run.
        self._record(
            FetchOutcome(
                url=item.requested_url or item.url,
                status=item.status,
                error=None if gone else f"dropped: {exception}",
                feed_date=item.feed_date if gone else None,
            )
        )
        if not gone:
            return
        urls = dict.fromkeys(u for u in (item.requested_url, item.url) if u)
        future = self.writer.submit(_mark_removed, self.archive, list(urls), item.status)
        future.add_done_callback(self._removed)

    def item_error(self, item: Any, response: Any, spider: Any, failure: Any) -> None:
        """A bug while processing one page (Scrapy logged it): the page is a failed fetch,
        counted and retried next run; the other pages go on."""
        if isinstance(item, (Page, FeedPage)):
            url = item.requested_url or item.url
            self._failed("item_error", url, getattr(item, "status", None), failure)

    def spider_error(self, failure: Any, response: Any, spider: Any) -> None:
        """A bug in a spider callback while reading a page: the same, as ``spider_error``."""
        if response is not None:
            url = (response.meta.get("redirect_urls") or [response.url])[0]
            self._failed("spider_error", url, response.status, failure)

    def _failed(self, kind: str, url: str, status: int | None, failure: Any) -> None:
        self.stats.inc_value(f"rsarchive/{kind}")
        error = f"{kind}: {failure.type.__name__}: {failure.getErrorMessage()}"[:500]
        if self.archive is not None:
            self._record(FetchOutcome(url=url, status=status, error=error))

    def _removed(self, future: Any) -> None:
        try:
            known, marked = future.result()
        except SQLAlchemyError as exc:
            self._failed_in_writer(exc, "mark removed")
            return
        if known:
            self.stats.inc_value(GONE_ARCHIVED)
        for url in marked:
            logger.warning("%s is gone: the archived article is marked removed", url)
            self.stats.inc_value("rsarchive/articles_removed")

    def spider_closed(self, spider: Any, reason: str) -> None:
        archive, self.archive = self.archive, None
        if archive is None:
            self.writer.shutdown()
            return
        status = run_status(reason)
        # Let queued writes (removals) finish first, so the stats below include them.
        self.writer.submit(int).result()
        self.stats.set_value("rsarchive/page_commits", self.writer.page_commits)
        stats = dict(self.stats.get_stats())
        stats["finish_reason"] = reason
        started = stats.get("start_time")
        elapsed = (datetime.now(UTC) - started).total_seconds() if started else None
        logger.info("summary: %s", human_summary(stats, elapsed))
        try:
            if self.unwritable is not None:
                self.writer.submit(archive.make_room).result()
            if self.run_id is not None:
                self.writer.submit(
                    archive.finish_run,
                    self.run_id,
                    status=status,
                    finish_reason=reason,
                    stats=stats,
                    exit_code=exit_code(reason, stats),
                ).result()
        except SQLAlchemyError as exc:  # a full disk may refuse even this: the summary says it
            logger.error("could not close run %s in the archive: %s", self.run_id, exc.orig or exc)
        finally:
            self.writer.submit(archive.close).result()
            self.writer.shutdown()


def _mark_removed(archive: Archive, urls: list[str], status: int) -> tuple[bool, list[str]]:
    """Whether the archive holds the page's article, and the URLs newly marked removed."""
    known = bool(archive.known_urls(normalize_url(url) for url in urls))
    return known, [url for url in urls if archive.mark_removed(url, status)]


def _open(database_url: str, spider: str, args: dict[str, Any]) -> tuple[Archive, int]:
    archive = Archive(database_url)
    close_dead_runs(archive.engine)  # runs killed before they could close their row
    return archive, archive.start_run(spider, args)


def _redact(url: str) -> str:
    """A database URL fit for a log line (no password)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"
