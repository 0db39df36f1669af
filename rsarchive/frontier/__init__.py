"""Several crawler processes on one shared frontier: scrapy-redis in Redis, the archive in
PostgreSQL.

Switched on by ``RSARCHIVE_FRONTIER_URL`` (``redis://HOST:6379/0``; ``rsarchive crawl
--frontier``). ``FrontierAddon`` then swaps in scrapy-redis's scheduler and duplicate filter
(through ``FrontierScheduler``, which adds leases) and adds the shared per-host limiter and the
seed-once spider middleware. Without the setting nothing changes.

Keys (``PREFIX`` is ``RSARCHIVE_FRONTIER_KEY``, ``rsarchive:<spider>`` by default)::

    PREFIX:requests          sorted set   the request queue (scrapy-redis PriorityQueue)
    PREFIX:dupefilter        set          request fingerprints (scrapy-redis RFPDupeFilter)
    PREFIX:seeded            string       the worker seeding this run, then "done"
    PREFIX:workers           set          worker ids of this frontier
    PREFIX:worker:<id>       string       a live worker's heartbeat (expires after the lease)
    PREFIX:inflight:<id>     hash         requests a worker took: encoded request -> priority
    rsarchive:host:<host>:*  zset/string  the shared per-host limiter (all spiders)
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rsarchive.config import SettingError, get_float

SCHEMES = ("redis", "rediss", "unix")


def frontier_url(settings: Any) -> str | None:
    """``RSARCHIVE_FRONTIER_URL``, checked: a Redis URL, or None when no frontier is used."""
    raw = settings.get("RSARCHIVE_FRONTIER_URL")
    value = (raw or "").strip()
    if not value:
        return None
    if value.partition("://")[0] not in SCHEMES:
        raise SettingError(
            f"RSARCHIVE_FRONTIER_URL={raw!r} is not a Redis URL: give redis://HOST:6379/0 "
            "(or rediss://, unix://)"
        )
    return value


def redact(url: str | None) -> str:
    """A Redis URL fit for a log line: its password hidden."""
    parts = urlsplit(url or "")
    if parts.password is None:
        return url or ""
    netloc = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc[2]}"))


def connect(settings: Any) -> Any:
    """A client of the frontier's Redis (scrapy-redis's settings), checked to answer."""
    from redis.exceptions import RedisError
    from scrapy_redis.connection import get_redis_from_settings

    url = frontier_url(settings)
    server = get_redis_from_settings(settings)
    try:
        server.ping()
    except RedisError as exc:
        raise SettingError(f"the frontier {redact(url)} cannot be reached: {exc}") from None
    return server


def lease_seconds(settings: Any) -> float:
    return get_float(settings, "RSARCHIVE_FRONTIER_LEASE", minimum=1)


def worker_id() -> str:
    """This process among the workers: host, pid and a random tail (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one spider's frontier."""

    prefix: str

    @classmethod
    def of(cls, settings: Any, spider: str) -> Keys:
        return cls(settings.get("RSARCHIVE_FRONTIER_KEY") % {"spider": spider})

    @property
    def seeded(self) -> str:
        return f"{self.prefix}:seeded"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def heartbeat(self, worker: str) -> str:
        return f"{self.prefix}:worker:{worker}"

    def inflight(self, worker: str) -> str:
        return f"{self.prefix}:inflight:{worker}"


class FrontierAddon:
    """Scrapy add-on: with ``RSARCHIVE_FRONTIER_URL`` set, crawl from the shared frontier."""

    def update_settings(self, settings: Any) -> None:
        url = frontier_url(settings)  # SettingError: the crawl does not start (exit 78)
        if not url:
            return
        key = settings.get("RSARCHIVE_FRONTIER_KEY")
        try:
            key % {"spider": "spider"}
        except (KeyError, ValueError, TypeError):
            raise SettingError(
                f"RSARCHIVE_FRONTIER_KEY={key!r} is not a key prefix: use %(spider)s for the "
                "spider's name, e.g. rsarchive:%(spider)s"
            ) from None
        try:
            import scrapy_redis  # noqa: F401
        except ImportError:
            raise SettingError(
                "RSARCHIVE_FRONTIER_URL needs scrapy-redis: pip install 'rsarchive[frontier]'"
            ) from None
        for name, value in {
            "SCHEDULER": "rsarchive.frontier.scheduler.FrontierScheduler",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            "REDIS_URL": url,
            # Every Redis call blocks the crawl's thread: a host that went away must not stall
            # it for scrapy-redis's default 30 s a call.
            "REDIS_PARAMS": {"socket_timeout": 5, "socket_connect_timeout": 5},
            # Workers come and go; the last one to leave a finished run clears it, not each one.
            "SCHEDULER_PERSIST": True,
            "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
            "SCHEDULER_QUEUE_KEY": settings.get("RSARCHIVE_FRONTIER_KEY") + ":requests",
            "SCHEDULER_DUPEFILTER_KEY": settings.get("RSARCHIVE_FRONTIER_KEY") + ":dupefilter",
        }.items():
            settings.set(name, value, priority="addon")
        # Last before the download: a request waits for its host's turn only once it would go.
        settings.set_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", "rsarchive.frontier.limiter.HostLimiterMiddleware", 980
        )
        settings.set_in_component_priority_dict(
            "SPIDER_MIDDLEWARES", "rsarchive.frontier.seed.SeedOnceMiddleware", 10
        )
