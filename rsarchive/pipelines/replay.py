"""Replay responses (stored captures, or imported ones) through split -> clean -> store, on N cores.

Worker processes do the CPU part (parse, split, clean: ``read_capture``), and so does the calling
process while it waits for them. It is also the one writer: it stores what they all read in the
order the responses came, so a page's revisions, a teaser's first sighting and every row id are
those of a one-core replay. The writer commits in batches (``Archive.batched``): the responses
are the source, so a crash loses nothing that a second run does not re-read.

``replay`` takes any iterable of ``Capture``: ``rsarchive reparse`` feeds it from ``captures``,
an import can feed it the responses of a WARC file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy.exceptions import DropItem
from scrapy.settings import Settings
from scrapy.statscollectors import StatsCollector

from rsarchive.archive import Archive
from rsarchive.extract.loadmore import keep_feed_teasers, parse_load_more
from rsarchive.items import FeedPage, Page
from rsarchive.pipelines.clean import CleanPipeline, NotArchivable
from rsarchive.pipelines.split import SplitPipeline
from rsarchive.spiders import selector_of

# Captures per task sent to a worker (fewer round trips), and tasks in flight per worker (the
# writer never waits for a worker, and memory stays bounded however many captures there are).
_CHUNK = 8
_AHEAD = 4
# Pages per commit in a replay (see Archive.batched).
BATCH_PAGES = 200


@dataclass(slots=True)
class Capture:
    """One HTTP response to replay, its body as received (the ``captures`` columns)."""

    url: str
    status: int
    fetched_at: str
    body: bytes
    final_url: str | None = None
    requested_url: str | None = None
    content_type: str | None = None
    headers: str | None = None  # JSON object
    feed_page_url: str | None = None  # a load-more answer: the page whose feed it continues
    feed_position: int | None = None
    feed_repeats: str | None = None  # JSON list


@dataclass(slots=True)
class Read:
    """What a worker made of one capture: a page or a load-more answer ready to store, or the
    reason it is not archivable; and the stats its steps counted."""

    item: Page | FeedPage | None
    dropped: str | None
    stats: dict[str, int]


class _OfflineCrawler:
    """What the split and clean steps read from a crawler: its settings and stats."""

    def __init__(self, site_url: str, stats: StatsCollector | None = None) -> None:
        self.settings = Settings({"RSARCHIVE_SITE_URL": site_url, "STATS_DUMP": False})
        self.stats = stats or StatsCollector(self)  # type: ignore[arg-type]


def page_from_capture(capture: Any, body: bytes) -> Page:
    """The ``Page`` the spider yielded for this response (as ``RebelMouseSpider.page_item``)."""
    headers: dict[str, str] = json.loads(capture.headers or "{}")
    url = capture.final_url or capture.url
    return Page(
        url=url,
        status=capture.status,
        fetched_at=capture.fetched_at,
        requested_url=capture.requested_url,
        content_type=capture.content_type,
        headers=headers,
        body=body,
        # None for anything not HTML; a tree too deep for libxml2 is read flattened, as in a crawl.
        selector=selector_of(url, capture.status, headers, body)[0],
    )


def feed_page_from_capture(capture: Any, body: bytes) -> FeedPage:
    """The ``FeedPage`` the spider yielded for this load-more answer (as
    ``RebelMouseSpider.feed_page_item``), its teasers read again by today's parser.

    Raises ValueError when the answer is not the JSON the endpoint sends.
    """
    url = capture.final_url or capture.url
    position = capture.feed_position or 0
    more = parse_load_more(body, capture.feed_page_url, position)
    repeats: list[str] = json.loads(capture.feed_repeats or "[]")
    # The answer came from the configured site: its host is the site.
    parts = urlsplit(url)
    return FeedPage(
        url=url,
        page_url=capture.feed_page_url,
        fetched_at=capture.fetched_at,
        teasers=keep_feed_teasers(more.teasers, set(repeats), f"{parts.scheme}://{parts.netloc}"),
        status=capture.status,
        requested_url=capture.requested_url,
        content_type=capture.content_type,
        headers=json.loads(capture.headers or "{}"),
        body=body,
        position=position,
        repeats=repeats,
    )


class _Reader:
    """The split and clean steps of each site the captures came from, and the stats they count."""

    def __init__(self) -> None:
        self.stats = StatsCollector(_OfflineCrawler(""))  # type: ignore[arg-type]
        self.steps: dict[str, tuple[SplitPipeline, CleanPipeline]] = {}

    def read(self, capture: Capture) -> Read:
        self.stats.clear_stats()
        item: Page | FeedPage | None = None
        dropped: str | None = None
        if capture.feed_page_url is not None:
            try:
                item = feed_page_from_capture(capture, capture.body)
            except ValueError:
                dropped = "feed_invalid"
        else:
            page = page_from_capture(capture, capture.body)
            # The capture was archived under the site it came from: the same host counts here.
            parts = urlsplit(page.url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in self.steps:
                crawler = _OfflineCrawler(origin, self.stats)
                self.steps[origin] = (SplitPipeline(crawler), CleanPipeline(crawler))
            split, clean = self.steps[origin]
            try:
                item = clean.process_item(split.process_item(page))
                item.selector = None  # not needed past here, and not sent between processes
            except DropItem as exc:
                dropped = exc.key if isinstance(exc, NotArchivable) else "other"
        return Read(item, dropped, dict(self.stats.get_stats()))


_worker_reader: _Reader | None = None


def read_capture(capture: Capture) -> Read:
    """Parse, split and clean one capture (in this process; a worker keeps its steps)."""
    global _worker_reader
    if _worker_reader is None:
        _worker_reader = _Reader()
    return _worker_reader.read(capture)


def _read_chunk(captures: list[Capture]) -> list[Read]:
    reads = [read_capture(c) for c in captures]
    for read in reads:
        if read.item is not None:
            read.item.body = b""  # the caller has it: not sent back between processes
    return reads


def default_jobs() -> int:
    """All the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _chunks(captures: Iterable[Capture]) -> Iterator[list[Capture]]:
    chunk: list[Capture] = []
    for capture in captures:
        chunk.append(capture)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_all(captures: Iterable[Capture], jobs: int) -> Iterator[Read]:
    """``read_capture`` of every capture, in their order: here (one job), or here and on
    ``jobs - 1`` worker processes, with at most a few chunks read ahead of the writer."""
    if jobs <= 1:
        reader = _Reader()
        for capture in captures:
            yield reader.read(capture)
        return
    methods = multiprocessing.get_all_start_methods()
    # fork: a worker starts in milliseconds with everything imported (the writer holds no lock
    # a worker could need; workers never touch the database).
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    # One process less than the jobs: the writer reads too, whenever the oldest chunk is not
    # back yet. With a worker per core the writer had a third of each core's time and the
    # workers waited on it; this way no core runs more than one of them.
    workers = jobs - 1
    pool = context.Pool(workers)
    reader = _Reader()
    try:
        pending: deque[tuple[list[Capture], Any]] = deque()
        in_pool = 0
        chunks = _chunks(captures)
        exhausted = False
        while True:
            while pending and _ready(pending[0][1]):
                chunk, result = pending.popleft()
                if not isinstance(result, list):
                    in_pool -= 1
                yield from _with_bodies(chunk, result)
            while not exhausted and in_pool < workers * _AHEAD:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                    break
                pending.append((chunk, pool.apply_async(_read_chunk, (chunk,))))
                in_pool += 1
            if not pending:
                break
            if _ready(pending[0][1]):
                continue
            # The oldest chunk is still with a worker: read the next one here rather than wait.
            if not exhausted and len(pending) < jobs * _AHEAD:
                chunk = next(chunks, None)
                if chunk is not None:
                    pending.append((chunk, [reader.read(c) for c in chunk]))
                    continue
                exhausted = True
            pending[0][1].wait()
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _ready(result: Any) -> bool:
    return isinstance(result, list) or result.ready()


def _with_bodies(chunk: list[Capture], result: Any) -> Iterator[Read]:
    reads = result if isinstance(result, list) else result.get()
    for capture, read in zip(chunk, reads, strict=True):
        if read.item is not None:
            read.item.body = capture.body
        yield read


@dataclass
class ReplayCounts:
    """What a replay stored and skipped, and the stats of its steps."""

    captures: int = 0
    pages_stored: int = 0
    feed_pages_stored: int = 0  # load-more answers
    teasers_new: int = 0

    def __post_init__(self) -> None:
        self.articles: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.step_stats: Counter[str] = Counter()


def replay(
    captures: Iterable[Capture],
    target: Archive,
    run_id: int,
    counts: ReplayCounts,
    *,
    jobs: int = 1,
    keep_times: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ReplayCounts:
    """Store what every capture reads as today, in their order, into ``target`` (run ``run_id``).

    ``keep_times``: what is seen is dated by the captures' fetch times (a faithful rebuild, an
    import); otherwise now (re-reading an archive in place). ``counts`` is filled as it goes,
    so a caller that is interrupted still knows what was done.
    """
    with target.batched(BATCH_PAGES):
        for done, read in enumerate(read_all(captures, jobs), start=1):
            counts.captures += 1
            counts.step_stats.update(read.stats)
            item = read.item
            if read.dropped is not None or item is None:
                counts.dropped[read.dropped or "other"] += 1
                continue
            seen_at = item.fetched_at if keep_times else None
            if isinstance(item, FeedPage):
                stored = target.store_feed_page(item, run_id, seen_at=seen_at)
                counts.feed_pages_stored += 1
            else:
                stored = target.store_page(item, run_id, seen_at=seen_at)
                counts.pages_stored += 1
                if stored.article_status:
                    counts.articles[stored.article_status] += 1
            counts.teasers_new += stored.teasers_new
            if progress:
                progress(done)
    return counts
