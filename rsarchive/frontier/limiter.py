"""One politeness budget per host for all workers: a limiter in Redis.

Scrapy's ``CONCURRENT_REQUESTS_PER_DOMAIN`` and ``DOWNLOAD_DELAY`` hold per process; with a
frontier they hold for all workers together. Before a request goes out, the worker takes a turn
from its host's limiter (one Redis script, on the server's clock): a slot among
``CONCURRENT_REQUESTS_PER_DOMAIN`` held ones, and no sooner than ``DOWNLOAD_DELAY`` after the
previous start. The slot is given back when the answer (or the error) comes. A slot of a worker
that died expires after ``RSARCHIVE_FRONTIER_LEASE`` seconds (live workers renew theirs). A
429/503 answer with ``Retry-After`` pauses the host for every worker, not only for the one that
got it (which also waits, through ``RetryAfterMiddleware``).

Each worker also keeps Scrapy's own per-process limits, which are never looser.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from redis.exceptions import RedisError
from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.asyncio import create_looping_call, sleep
from scrapy.utils.httpobj import urlparse_cached

from rsarchive.config import get_float, get_int
from rsarchive.frontier import connect, lease_seconds, worker_id
from rsarchive.frontier.scheduler import REQUEUE
from rsarchive.middlewares import retry_after_seconds

logger = logging.getLogger(__name__)

# KEYS: the host's held slots (zset token -> expiry), its next allowed start.
# ARGV: slots, delay, lease, token. Returns "0" (go), else seconds to wait ("-1": no free slot).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local after = tonumber(redis.call('GET', KEYS[2]) or '0')
if after > now then return tostring(after - now) end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return '-1' end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
local delay = tonumber(ARGV[2])
redis.call('SET', KEYS[2], string.format('%.6f', now + delay), 'PX', math.ceil(delay * 1000) + 1000)
return '0'
"""

# KEYS: the host's next allowed start. ARGV: seconds. No start before now + seconds.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local pause = tonumber(ARGV[1])
local after = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + pause > after then
  local ms = math.ceil(pause * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.6f', now + pause), 'PX', ms)
end
return 1
"""


class FrontierUnavailable(Exception):
    """The shared limiter cannot be asked: the request is not sent."""


#: Longest nap between two tries for a slot (a slot given back is noticed within this).
POLL = 0.05


class HostLimiterMiddleware:
    """Downloader middleware: a request goes out when its host's shared budget allows."""

    def __init__(self, crawler: Any) -> None:
        settings = crawler.settings
        self.crawler = crawler
        # First to start (the downloader is built before the engine opens): checks the server.
        self.server = connect(settings)
        self.slots = get_int(settings, "CONCURRENT_REQUESTS_PER_DOMAIN", minimum=1)
        self.delay = get_float(settings, "DOWNLOAD_DELAY", minimum=0)
        self.lease = lease_seconds(settings)
        self.prefix = settings.get("RSARCHIVE_FRONTIER_HOST_KEY")
        self.retry_after_max = get_float(settings, "RSARCHIVE_RETRY_AFTER_MAX", minimum=0)
        self._acquire = self.server.register_script(_ACQUIRE)
        self._pause = self.server.register_script(_PAUSE)
        self._worker = worker_id()
        self._tokens = itertools.count()
        self._held: dict[str, str] = {}  # token -> the host's slots key
        self._renew = create_looping_call(self._renew_slots)
        self._renew.start(min(self.lease / 3, 1.0), now=False)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> HostLimiterMiddleware:
        if not crawler.settings.get("RSARCHIVE_FRONTIER_URL"):
            raise NotConfigured("no frontier")
        return cls(crawler)

    async def process_request(self, request: Any) -> None:
        host = urlparse_cached(request).netloc
        slots_key, next_key = self._keys(host)
        token = f"{self._worker}:{next(self._tokens)}"
        waited = 0.0
        while True:
            try:
                answer = float(
                    self._acquire(
                        keys=[slots_key, next_key],
                        args=[self.slots, self.delay, self.lease, token],
                    )
                )
            except RedisError as exc:
                # Going out without a turn could break the host's limits: the request fails
                # (recorded as failed, for the next run).
                raise FrontierUnavailable(f"the host limiter does not answer: {exc}") from exc
            if answer == 0:
                break
            nap = POLL if answer < 0 else min(answer, 1.0)
            waited += nap
            await sleep(nap)
            if not self.crawler.engine.running:
                request.meta[REQUEUE] = True  # not sent: back to the queue for another worker
                raise IgnoreRequest("shutting down")
        self._held[token] = slots_key
        request.meta["rsarchive_host_slot"] = token
        if waited:
            self.crawler.stats.inc_value("rsarchive/frontier/host_waits")

    def process_response(self, request: Any, response: Any) -> Any:
        self._release(request)
        if response.status in (429, 503):
            delay = retry_after_seconds(response.headers.get(b"Retry-After"))
            if delay and 0 < delay <= self.retry_after_max:
                # The answer speaks for the whole host: every worker holds off.
                _, next_key = self._keys(urlparse_cached(request).netloc)
                try:
                    self._pause(keys=[next_key], args=[delay])
                except RedisError as exc:
                    logger.error("frontier: cannot pause %s for the others: %s", next_key, exc)
                self.crawler.stats.inc_value("rsarchive/frontier/host_paused")
        return response

    def process_exception(self, request: Any, exception: BaseException) -> None:
        self._release(request)
        slot = self.crawler.engine._slot
        if isinstance(exception, IgnoreRequest) and slot is not None and slot.closing:
            # Not sent because this worker is stopping (robots.txt unavailable, a shutdown):
            # the request goes back to the queue for another worker or the next run.
            request.meta[REQUEUE] = True

    def spider_closed(self) -> None:
        if self._renew.running:
            self._renew.stop()

    def _keys(self, host: str) -> tuple[str, str]:
        base = f"{self.prefix}:{host}"
        return f"{base}:slots", f"{base}:next"

    def _release(self, request: Any) -> None:
        token = request.meta.pop("rsarchive_host_slot", None)
        slots_key = self._held.pop(token, None) if token else None
        if slots_key is None:
            return
        try:
            self.server.zrem(slots_key, token)
        except RedisError as exc:  # the slot expires after the lease anyway
            logger.error("frontier: cannot give back a host slot: %s", exc)

    def _renew_slots(self) -> None:
        """Push the expiry of the slots this worker holds (a long download is not a death)."""
        if not self._held:
            return
        try:
            now = self.server.time()[0]  # the server's clock, as the limiter script's
            pipe = self.server.pipeline(transaction=False)
            for token, slots_key in list(self._held.items()):
                pipe.zadd(slots_key, {token: now + self.lease}, xx=True)
            pipe.execute()
        except RedisError as exc:
            logger.error("frontier: cannot renew host slots: %s", exc)
