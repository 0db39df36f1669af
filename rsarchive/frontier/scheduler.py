"""The frontier's scheduler: scrapy-redis's, plus leases, so a killed worker loses no request.

scrapy-redis pops a request from the shared queue destructively: a worker killed with SIGKILL
takes the requests it was working on with it. Here a pop moves the request, in one Redis script,
into the worker's in-flight hash; the request leaves that hash (is "acknowledged") only once the
engine is done with it: its page stored, its follow-up requests queued, or the request replaced
by a retry or a redirect. Every worker refreshes a heartbeat key that expires after
``RSARCHIVE_FRONTIER_LEASE`` seconds; any worker that finds a heartbeat expired puts that
worker's in-flight requests back in the queue.

A worker stays while the run has work anywhere (queued, in flight at a live worker, or seeding
still going on), so one that joins mid-run, or one whose queue runs dry while others still
fetch, waits instead of closing. The last worker to leave a finished run clears the run's keys,
so the next run seeds afresh; a run all of whose workers stopped early resumes where it was.

Also adapts scrapy-redis 0.9.1 to Scrapy 2.19, which deprecates two things its scheduler does:
passing ``spider=`` to the stats collector (fixed upstream, not yet released) and
``Spider.log()`` (in ``open``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import RedisError
from scrapy.http import Request
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

from rsarchive.frontier import Keys, connect, lease_seconds, worker_id

logger = logging.getLogger(__name__)

#: The close reason (and ``rsarchive/<reason>`` stat) of a worker whose Redis stopped answering.
UNAVAILABLE = "frontier_unavailable"
#: Request meta: the request was not sent (a shutdown): its lease stays, to go back to the queue.
REQUEUE = "rsarchive_frontier_requeue"

# Lua prelude: put the in-flight requests of every worker whose heartbeat expired back in the
# queue (KEYS[1] workers set, KEYS[2] queue; ARGV[1] key prefix). Sets ``reaped``.
_REAP = """
local reaped = 0
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. ':worker:' .. w) == 0 then
    local inflight = ARGV[1] .. ':inflight:' .. w
    local held = redis.call('HGETALL', inflight)
    for i = 1, #held, 2 do
      redis.call('ZADD', KEYS[2], held[i + 1], held[i])
      reaped = reaped + 1
    end
    redis.call('DEL', inflight)
    redis.call('SREM', KEYS[1], w)
  end
end
local function inflight_total()
  local n = 0
  for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    n = n + redis.call('HLEN', ARGV[1] .. ':inflight:' .. w)
  end
  return n
end
"""

# Join (KEYS: workers, queue, dupefilter, seeded; ARGV: prefix, worker, lease ms). With no live
# worker and an empty queue, what is left is a finished run that nobody cleared: clear it.
_JOIN = (
    _REAP
    + """
local cleared = 0
if redis.call('SCARD', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0 then
  cleared = redis.call('DEL', KEYS[3], KEYS[4])
end
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('SET', ARGV[1] .. ':worker:' .. ARGV[2], '1', 'PX', ARGV[3])
return {reaped, cleared, redis.call('ZCARD', KEYS[2])}
"""
)

# Pop the first request and hold it (KEYS: workers, queue, own in-flight hash; ARGV: prefix).
_POP = """
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #first == 0 then return false end
redis.call('ZREM', KEYS[2], first[1])
redis.call('HSET', KEYS[3], first[1], first[2])
return first[1]
"""

# The run's state (KEYS: workers, queue, seeded; ARGV: prefix):
# {queued, in flight, seeding, requeued from lost workers}.
_STATE = (
    _REAP
    + """
local seeder = redis.call('GET', KEYS[3])
local seeding = 0
if seeder and seeder ~= 'done' and redis.call('EXISTS', ARGV[1] .. ':worker:' .. seeder) == 1 then
  seeding = 1
end
return {redis.call('ZCARD', KEYS[2]), inflight_total(), seeding, reaped}
"""
)

# Leave (KEYS: workers, queue, dupefilter, seeded; ARGV: prefix, worker): requests still held go
# back; the last worker of a finished run clears it. Returns {requeued, finished}.
_LEAVE = (
    """
local mine = ARGV[1] .. ':inflight:' .. ARGV[2]
local held = redis.call('HGETALL', mine)
for i = 1, #held, 2 do redis.call('ZADD', KEYS[2], held[i + 1], held[i]) end
redis.call('DEL', mine, ARGV[1] .. ':worker:' .. ARGV[2])
redis.call('SREM', KEYS[1], ARGV[2])
"""
    + _REAP
    + """
local finished = 0
if redis.call('SCARD', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  finished = 1
end
return {#held / 2 + reaped, finished}
"""
)


class FrontierScheduler(Scheduler):
    """scrapy-redis's ``Scheduler`` with leased pops and a run shared by many workers."""

    crawler: Any
    keys: Keys

    @classmethod
    def from_crawler(cls, crawler: Any) -> FrontierScheduler:
        settings = crawler.settings
        connect(settings)  # a clear error, not a traceback, when the server does not answer
        scheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        scheduler.lease = lease_seconds(settings)
        scheduler.worker = worker_id()
        scheduler._leased = {}  # request -> its encoded form, the member of the in-flight hash
        scheduler._beat_call = None
        scheduler._failing_since = None  # when Redis stopped answering (monotonic)
        scheduler._stopping = False
        return scheduler

    def open(self, spider: Any) -> None:
        # As scrapy-redis's ``open``, which also logs through the deprecated ``Spider.log``.
        self.spider = spider
        self.queue = load_object(self.queue_cls)(
            server=self.server,
            spider=spider,
            key=self.queue_key % {"spider": spider.name},
            serializer=self.serializer,
        )
        if self.df is None:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        self.keys = Keys.of(self.crawler.settings, spider.name)
        server = self.server
        self._join = server.register_script(_JOIN)
        self._pop = server.register_script(_POP)
        self._state = server.register_script(_STATE)
        self._leave = server.register_script(_LEAVE)
        reaped, cleared, queued = self._join(
            keys=self._run_keys(), args=[self.keys.prefix, self.worker, self._lease_ms()]
        )
        if cleared:
            logger.info("frontier: cleared a finished run nobody had cleared")
        self._reaped(reaped)
        logger.info(
            "frontier %s: worker %s joined (%d requests queued)",
            self.keys.prefix,
            self.worker,
            queued,
        )
        self.stats.set_value("rsarchive/frontier_worker", self.worker)
        slot = self.crawler.engine._slot
        self._nextcall = slot.nextcall
        # Scrapy has no "request done" signal: the engine's slot forgets a request once its
        # download, callback, item pipelines and follow-up scheduling are all over. That is the
        # moment its lease ends.
        forget = slot.remove_request

        def remove_request(request: Request) -> None:
            self._ack(request)
            forget(request)

        slot.remove_request = remove_request
        # Renew the lease well before it ends; also wake the engine for work other workers queue.
        self._beat_call = create_looping_call(self._beat)
        self._beat_call.start(min(self.lease / 3, 1.0), now=False)

    def close(self, reason: str) -> None:
        if self._beat_call is not None and self._beat_call.running:
            self._beat_call.stop()
        try:
            requeued, finished = self._leave(
                keys=self._run_keys(), args=[self.keys.prefix, self.worker]
            )
        except RedisError as exc:
            logger.error(
                "frontier: cannot leave the run (%s): the requests this worker held go back "
                "to the queue when its lease ends",
                exc,
            )
            return
        if requeued:
            logger.info("frontier: %d requests back in the queue for the other workers", requeued)
        if finished:
            logger.info("frontier %s: run finished, its keys cleared", self.keys.prefix)

    def enqueue_request(self, request: Request) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        try:
            data = self._pop(
                keys=[self.keys.workers, self.queue.key, self.keys.inflight(self.worker)],
                args=[self.keys.prefix],
            )
        except RedisError as exc:
            self._unreachable(exc)
            return None
        self._failing_since = None
        if data is None:
            return None
        request = self.queue._decode_request(data)
        self._leased[request] = data
        self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        """Work left in the run, here or at another worker: an idle worker waits for it."""
        try:
            queued, inflight, seeding, reaped = self._state(
                keys=[self.keys.workers, self.queue.key, self.keys.seeded], args=[self.keys.prefix]
            )
        except RedisError as exc:
            self._unreachable(exc)
            return True  # the run's state is unknown: wait (a while) rather than leave it
        self._reaped(reaped)
        return bool(queued or inflight or seeding)

    def claim_seed(self) -> bool:
        """True for the one worker of a run that seeds it (feeds, sitemaps, start pages)."""
        return bool(self.server.set(self.keys.seeded, self.worker, nx=True))

    def seeded(self) -> None:
        self.server.set(self.keys.seeded, "done")

    # -- internals ---------------------------------------------------------------------------

    def _run_keys(self) -> list[str]:
        # The queue's and duplicate filter's own keys (a -s SCHEDULER_*_KEY may name them).
        return [self.keys.workers, self.queue.key, self.df.key, self.keys.seeded]

    def _lease_ms(self) -> int:
        return int(self.lease * 1000)

    def _reaped(self, count: int) -> None:
        if count:
            logger.warning("frontier: %d requests of lost workers back in the queue", count)
            self.stats.inc_value("rsarchive/frontier/requeued", count)

    def _ack(self, request: Request) -> None:
        data = self._leased.pop(request, None)
        if data is None or request.meta.get(REQUEUE):
            return  # (REQUEUE: not sent, because of a shutdown: it goes back to the queue)
        try:
            self.server.hdel(self.keys.inflight(self.worker), data)
        except RedisError as exc:
            logger.warning("frontier: %s may be fetched again (%s)", request.url, exc)

    def _unreachable(self, exc: RedisError) -> None:
        """Redis does not answer: wait a lease's time for it, then stop the run (exit 75)."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            logger.error("frontier: Redis does not answer: %s", exc)
        elif now - self._failing_since > self.lease and not self._stopping:
            self._stopping = True
            logger.error("frontier: Redis has not answered for %.0f s: stopping", self.lease)
            self.stats.set_value(f"rsarchive/{UNAVAILABLE}", str(exc))
            engine = self.crawler.engine
            self._closing = deferred_from_coro(engine.close_spider_async(reason=UNAVAILABLE))

    def _beat(self) -> None:
        started = time.monotonic()
        try:
            self.server.set(self.keys.heartbeat(self.worker), "1", px=self._lease_ms())
        except RedisError as exc:  # the next beat tries again; the lease covers a few misses
            self._unreachable(exc)
        # The engine looks for work (or finds the run over) only every 5 s by itself: work
        # other workers queue, or the end of the run, is noticed within a beat instead.
        self._nextcall.schedule()
        if time.monotonic() - started > self.lease / 3:
            logger.warning("frontier: Redis answers slowly; leases may expire")
