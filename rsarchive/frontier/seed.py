"""Seed a shared run once: only the worker that claims the run's seed key sends start requests.

The spider's ``start()`` runs in every worker (it also checks the settings and closes a
misconfigured run); the requests it yields (the feeds, sitemaps, start pages, pages that failed
before) reach the frontier from one worker per run. The others take their work from the queue.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from scrapy.exceptions import NotConfigured
from scrapy.http import Request

from rsarchive.frontier.scheduler import FrontierScheduler

logger = logging.getLogger(__name__)


class SeedOnceMiddleware:
    """Spider middleware: start requests go out from the run's seeding worker only."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> SeedOnceMiddleware:
        if not crawler.settings.get("RSARCHIVE_FRONTIER_URL"):
            raise NotConfigured("no frontier")
        return cls(crawler)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        scheduler = self.crawler.engine._slot.scheduler
        if not isinstance(scheduler, FrontierScheduler):
            async for item in start:
                yield item
            return
        seeder = scheduler.claim_seed()
        stats = self.crawler.stats
        logger.info(
            "frontier: %s", "this worker seeds the run" if seeder else "joining a seeded run"
        )
        try:
            async for item in start:
                if seeder or not isinstance(item, Request):
                    yield item
                else:
                    stats.inc_value("rsarchive/frontier/start_requests_left_to_seeder")
        finally:
            if seeder:
                scheduler.seeded()
