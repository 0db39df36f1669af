"""Re-parse stored captures through the crawl's own split -> clean -> store steps, offline.

The pages come out of ``captures`` (decompressed, the bytes as received), become the same
``Page`` items the spider yields, and go through ``SplitPipeline``, ``CleanPipeline`` and
``Archive.store_page`` (what ``StorePipeline`` calls): no network, no Scrapy engine. Load-more
answers become the spider's ``FeedPage`` items (``parse_load_more``, ``keep_feed_teasers``) and go
to ``Archive.store_feed_page``. Into another archive every capture is replayed in fetch order (an
answer after the page whose feed it continues), so teasers link to their targets and keep their
positions as they did in the crawl; in place, only each URL's current capture.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scrapy.exceptions import DropItem
from scrapy.responsetypes import responsetypes
from scrapy.settings import Settings
from scrapy.statscollectors import StatsCollector
from sqlalchemy import func, or_, select

from rsarchive.archive import Archive
from rsarchive.archive import models as m
from rsarchive.archive.store import decompress_body
from rsarchive.extract.loadmore import keep_feed_teasers, parse_load_more
from rsarchive.items import FeedPage, Page
from rsarchive.pipelines.clean import CleanPipeline, NotArchivable
from rsarchive.pipelines.split import SplitPipeline
from rsarchive.spiders import fix_encoding, page_selector
from rsarchive.urls import normalize_url


class NoCaptures(LookupError):
    """The archive holds no capture of the page asked for (``url``): nothing to replay."""


class _OfflineCrawler:
    """What the split and clean steps read from a crawler: its settings and stats."""

    def __init__(self, site_url: str, stats: StatsCollector | None = None) -> None:
        self.settings = Settings({"RSARCHIVE_SITE_URL": site_url, "STATS_DUMP": False})
        self.stats = stats or StatsCollector(self)  # type: ignore[arg-type]


@dataclass
class ReparseResult:
    run_id: int
    captures: int = 0
    pages_stored: int = 0
    feed_pages_stored: int = 0  # load-more answers
    articles: Counter[str] = field(default_factory=Counter)
    teasers_new: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    stats: dict[str, Any] = field(default_factory=dict)


def page_from_capture(capture: Any, body: bytes) -> Page:
    """The ``Page`` the spider yielded for this response (as ``RebelMouseSpider.page_item``)."""
    headers: dict[str, str] = json.loads(capture.headers or "{}")
    url = capture.final_url or capture.url
    cls = responsetypes.from_args(headers=headers, url=url, body=body)
    response = fix_encoding(cls(url=url, status=capture.status, headers=headers, body=body))
    return Page(
        url=url,
        status=capture.status,
        fetched_at=capture.fetched_at,
        requested_url=capture.requested_url,
        content_type=capture.content_type,
        headers=headers,
        body=body,
        selector=page_selector(response)[0],
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


def _feeds_of(source: Archive, url: str) -> set[str]:
    """The ``feed_page_url`` keys of the page at ``url``: its own URL and, as its load-more
    answers are keyed by the page's article (its canonical URL), the articles read from it."""
    c = m.captures
    key = normalize_url(url)
    articles = (
        select(m.articles.c.url)
        .join(m.revisions, m.revisions.c.article_id == m.articles.c.id)
        .join(c, c.c.id == m.revisions.c.capture_id)
        .where(c.c.url == key)
    )
    with source.reader() as conn:
        return {key, *conn.scalars(articles)}


def _selection(source: Archive, since: str | None, url: str | None) -> list[int]:
    """Capture ids to replay, in fetch order; for ``url``, its pages and their feeds' answers."""
    c = m.captures
    query = select(c.c.id).order_by(c.c.fetched_at, c.c.id)
    if since:
        query = query.where(c.c.fetched_at >= since)
    if url:
        feeds = _feeds_of(source, url)
        query = query.where(
            or_(c.c.url == normalize_url(url), c.c.feed_page_url.in_(sorted(feeds)))
        )
    with source.reader() as conn:
        return list(conn.scalars(query))


def _current_selection(source: Archive, since: str | None, url: str | None) -> list[int]:
    """Capture ids to replay in place: per URL, only the capture that is its current state.

    Replaying every capture in place would play the archive's history again over its present:
    an edited page's older capture brings the old text back (a revision that never happened),
    the newer one then a second, and an older load-more answer moves teasers back to old
    positions. So each page URL gives its current capture: the newest, unless an older one
    (the same body, stored once) was seen again later, which the revision read from it records
    (a page edited, then reverted). Each load-more answer URL (one page of one feed) gives its
    newest answer. Pages come first, then the answers that continue their feeds.
    """
    c, r = m.captures, m.revisions
    seen_again = (
        select(r.c.capture_id, func.max(r.c.captured_at).label("at"))
        .where(r.c.capture_id.is_not(None))
        .group_by(r.c.capture_id)
        .subquery()
    )
    query = select(c.c.id, c.c.url, c.c.fetched_at, c.c.feed_page_url, seen_again.c.at).outerjoin(
        seen_again, seen_again.c.capture_id == c.c.id
    )
    if url:
        feeds = _feeds_of(source, url)
        query = query.where(
            or_(c.c.url == normalize_url(url), c.c.feed_page_url.in_(sorted(feeds)))
        )
    current: dict[tuple[bool, str], tuple[str, str, int]] = {}
    with source.reader() as conn:
        for row in conn.execute(query):
            at = max(row.fetched_at, row.at or "")
            key = (row.feed_page_url is not None, row.url)
            if key not in current or (at, row.fetched_at, row.id) > current[key]:
                current[key] = (at, row.fetched_at, row.id)
    chosen = sorted(
        (is_answer, at, capture_id)
        for (is_answer, _), (at, _, capture_id) in current.items()
        if not since or at >= since
    )
    return [capture_id for _, _, capture_id in chosen]


def reparse(
    source: Archive,
    target: Archive,
    *,
    since: str | None = None,
    url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    run_name: str = "reparse",
    run_args: dict[str, Any] | None = None,
) -> ReparseResult:
    """Re-parse ``source``'s captures (fetched at or after ``since``; of ``url``) into ``target``.

    Into another archive every capture is replayed in fetch order: the history is rebuilt.
    ``target`` may be ``source`` itself: then only each URL's current capture is replayed (see
    ``_current_selection``), so an unchanged parser changes nothing but ``last_seen_at`` and a
    parser whose output differs adds one revision (with its version) per changed article.
    """
    c = m.captures
    in_place = target is source
    ids = (_current_selection if in_place else _selection)(source, since, url)
    if url and not ids:
        when = f" fetched at or after {since}" if since else ""
        raise NoCaptures(f"no capture of {normalize_url(url)}{when} in the archive")

    # `rsarchive import` replays through here too, recorded as its own run (``run_name``).
    args = {**(run_args or {"since": since, "url": url}), "captures": len(ids)}
    result = ReparseResult(run_id=target.start_run(run_name, args))
    stats = StatsCollector(_OfflineCrawler(""))  # type: ignore[arg-type]
    steps: dict[str, tuple[SplitPipeline, CleanPipeline]] = {}
    status, reason = "failed", "error"
    try:
        for done, capture_id in enumerate(ids, start=1):
            with source.reader() as conn:
                row = conn.execute(select(c).where(c.c.id == capture_id)).first()
            assert row is not None
            body = decompress_body(row.body, row.compression)
            # Into another archive: the times are those of the captures (a faithful rebuild).
            # In place: the archive is re-read now, and what changes now is dated now.
            seen_at = None if in_place else row.fetched_at
            if row.feed_page_url is not None:
                result.captures += 1
                try:
                    feed = feed_page_from_capture(row, body)
                except ValueError:
                    result.dropped["feed_invalid"] += 1
                    continue
                stored = target.store_feed_page(feed, result.run_id, seen_at=seen_at)
                result.feed_pages_stored += 1
                result.teasers_new += stored.teasers_new
                if progress:
                    progress(done, len(ids))
                continue
            page = page_from_capture(row, body)
            # The capture was archived under the site it came from: the same host counts here.
            parts = urlsplit(page.url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in steps:
                crawler = _OfflineCrawler(origin, stats)
                steps[origin] = (SplitPipeline(crawler), CleanPipeline(crawler))
            split, clean = steps[origin]
            result.captures += 1
            try:
                page = clean.process_item(split.process_item(page))
            except DropItem as exc:
                key = exc.key if isinstance(exc, NotArchivable) else "other"
                result.dropped[key] += 1
                continue
            page.selector = None
            stored = target.store_page(page, result.run_id, seen_at=seen_at)
            result.pages_stored += 1
            if stored.article_status:
                result.articles[stored.article_status] += 1
            result.teasers_new += stored.teasers_new
            if progress:
                progress(done, len(ids))
        status, reason = "finished", "finished"
    except KeyboardInterrupt:
        status, reason = "interrupted", "shutdown"
        raise
    finally:
        result.stats = {
            **stats.get_stats(),
            "rsarchive/captures_reparsed": result.captures,
            "rsarchive/pages_stored": result.pages_stored,
            "rsarchive/feed_pages_stored": result.feed_pages_stored,
            **{f"rsarchive/articles_{k}": v for k, v in result.articles.items()},
            **{f"rsarchive/dropped/{k}": v for k, v in result.dropped.items()},
        }
        target.finish_run(result.run_id, status=status, finish_reason=reason, stats=result.stats)
    return result
