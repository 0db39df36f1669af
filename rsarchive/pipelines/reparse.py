"""Re-parse stored captures through the crawl's own split -> clean -> store steps, offline.

The pages come out of ``captures`` (decompressed, the bytes as received), become the same
``Page`` items the spider yields, and go through ``SplitPipeline``, ``CleanPipeline`` and
``Archive.store_page`` (what ``StorePipeline`` calls): no network, no Scrapy engine. Load-more
answers become the spider's ``FeedPage`` items (``parse_load_more``, ``keep_feed_teasers``) and go
to ``Archive.store_feed_page``. Into another archive every capture is replayed in fetch order (an
answer after the page whose feed it continues), so teasers link to their targets and keep their
positions as they did in the crawl; in place, only each URL's current capture. The replay itself
(worker processes parse, this one stores, in order) is ``replay.replay``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select

from rsarchive.archive import Archive
from rsarchive.archive import models as m
from rsarchive.archive.codec import capture_body
from rsarchive.pipelines.replay import (
    Capture,
    ReplayCounts,
    feed_page_from_capture,
    page_from_capture,
    replay,
)
from rsarchive.urls import normalize_url

__all__ = ["NoCaptures", "ReparseResult", "feed_page_from_capture", "page_from_capture", "reparse"]

# Captures read from the archive per query.
_READ_CHUNK = 100


class NoCaptures(LookupError):
    """The archive holds no capture of the page asked for (``url``): nothing to replay."""


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


def _captures(source: Archive, ids: list[int]) -> Iterator[Capture]:
    """The captures of ``ids``, in that order, bodies decompressed; read a chunk at a time (no
    read transaction held open while the replay writes)."""
    c = m.captures
    columns = [c.c[name] for name in Capture.__slots__ if name != "body"]
    stored = [c.c.id, c.c.body, c.c.compression, c.c.dictionary_id]
    for i in range(0, len(ids), _READ_CHUNK):
        chunk = ids[i : i + _READ_CHUNK]
        with source.reader() as conn:
            rows = {
                row.id: row
                for row in conn.execute(select(*stored, *columns).where(c.c.id.in_(chunk)))
            }
            bodies = {i: capture_body(conn, row, source.dictionaries) for i, row in rows.items()}
        for capture_id in chunk:
            row = rows[capture_id]
            yield Capture(
                body=bodies[capture_id],
                **{col.name: row._mapping[col.name] for col in columns},
            )


def reparse(
    source: Archive,
    target: Archive,
    *,
    since: str | None = None,
    url: str | None = None,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    run_name: str = "reparse",
    run_args: dict[str, Any] | None = None,
) -> ReparseResult:
    """Re-parse ``source``'s captures (fetched at or after ``since``; of ``url``) into ``target``.

    Into another archive every capture is replayed in fetch order: the history is rebuilt.
    ``target`` may be ``source`` itself: then only each URL's current capture is replayed (see
    ``_current_selection``), so an unchanged parser changes nothing but ``last_seen_at`` and a
    parser whose output differs adds one revision (with its version) per changed article.
    ``jobs``: processes that parse (see ``replay``); the result is the same for any number.
    ``run_name``, ``run_args``: the ``crawl_runs`` row it is recorded as (an import replays its
    staged captures through here as its own run).
    """
    in_place = target is source
    ids = (_current_selection if in_place else _selection)(source, since, url)
    if url and not ids:
        when = f" fetched at or after {since}" if since else ""
        raise NoCaptures(f"no capture of {normalize_url(url)}{when} in the archive")

    args = {**(run_args or {"since": since, "url": url}), "captures": len(ids)}
    result = ReparseResult(run_id=target.start_run(run_name, args))
    counts = ReplayCounts()
    status, reason = "failed", "error"
    try:
        replay(
            _captures(source, ids),
            target,
            result.run_id,
            counts,
            jobs=jobs,
            # Into another archive: the times are those of the captures (a faithful rebuild).
            # In place: the archive is re-read now, and what changes now is dated now.
            keep_times=not in_place,
            progress=(lambda done: progress(done, len(ids))) if progress else None,
        )
        status, reason = "finished", "finished"
    except KeyboardInterrupt:
        status, reason = "interrupted", "shutdown"
        raise
    finally:
        result.captures = counts.captures
        result.pages_stored = counts.pages_stored
        result.feed_pages_stored = counts.feed_pages_stored
        result.articles = counts.articles
        result.teasers_new = counts.teasers_new
        result.dropped = counts.dropped
        result.stats = {
            **counts.step_stats,
            "rsarchive/captures_reparsed": result.captures,
            "rsarchive/pages_stored": result.pages_stored,
            "rsarchive/feed_pages_stored": result.feed_pages_stored,
            **{f"rsarchive/articles_{k}": v for k, v in result.articles.items()},
            **{f"rsarchive/dropped/{k}": v for k, v in result.dropped.items()},
        }
        target.finish_run(result.run_id, status=status, finish_reason=reason, stats=result.stats)
    return result
