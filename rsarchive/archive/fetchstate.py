"""Fetch state: what the next run needs to know about each URL (validators, dates, failures).

Spiders ask through ``held`` and ``outstanding`` (reads, any thread); the store pipeline's writer
thread records outcomes through ``record``, and ``Archive.store_page`` records a stored page in
the page's own transaction (``page_upsert``). Functions take the archive's engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, Insert, func, literal_column, null, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..items import FetchOutcome, Page
from ..urls import normalize_url
from . import models as m
from .engine import READ_ONLY, SUPPORTED_DIALECTS
from .models import utc_now_iso

_IN_CHUNK = 500
_GONE = frozenset({404, 410})


@dataclass(slots=True)
class Held:
    """What the archive holds for one URL."""

    url: str
    archived: bool = False  # an article row with this URL
    date: str | None = None  # newest of the feed date seen, modified_at, published_at
    etag: str | None = None
    last_modified: str | None = None
    failures: int = 0
    last_status: int | None = None
    last_attempt_at: str | None = None

    @property
    def settled(self) -> bool:
        """Known and not waiting for a retry: fetched whole, unchanged (304) or gone."""
        if self.failures:
            return False
        return self.archived or self.last_status in (200, 304, *_GONE)

    def checked_since(self, when: str) -> bool:
        """True when the URL was last asked for at or after ``when`` (ISO UTC)."""
        return self.last_attempt_at is not None and self.last_attempt_at >= when

    def stale(self, seen: str | None) -> bool:
        """True when a feed or sitemap date ``seen`` is newer than what we hold."""
        if not seen:
            return False
        if not self.date:
            return True
        # Compare as text: both are ISO UTC; a bare day compares as its midnight.
        return seen > self.date and not (len(seen) == 10 and self.date.startswith(seen))


def held(engine: Engine, urls: Iterable[str]) -> dict[str, Held]:
    """For each URL we know of (normalised), what we hold; unknown URLs are left out."""
    wanted = list(dict.fromkeys(normalize_url(u) for u in urls))
    a, f = m.articles, m.fetch_state
    out: dict[str, Held] = {}
    reader = engine.execution_options(**READ_ONLY)
    with reader.connect() as conn:
        for i in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[i : i + _IN_CHUNK]
            for url, modified, published in conn.execute(
                select(a.c.url, a.c.modified_at, a.c.published_at).where(a.c.url.in_(chunk))
            ):
                out[url] = Held(url, archived=True, date=_newest(modified, published))
            for row in conn.execute(select(f).where(f.c.url.in_(chunk))):
                h = out.setdefault(row.url, Held(row.url))
                h.etag, h.last_modified = row.etag, row.last_modified
                h.failures, h.last_status = row.failures, row.last_status
                h.last_attempt_at = row.last_attempt_at
                h.date = _newest(h.date, row.feed_date)
    return out


def outstanding(engine: Engine, limit: int = 1000) -> list[str]:
    """URLs whose last attempt failed, oldest attempt first: the next run fetches them again."""
    f = m.fetch_state
    reader = engine.execution_options(**READ_ONLY)
    with reader.connect() as conn:
        return list(
            conn.scalars(
                select(f.c.url)
                .where(f.c.failures > 0)
                .order_by(f.c.last_attempt_at, f.c.id)
                .limit(limit)
            )
        )


def record(engine: Engine, outcome: FetchOutcome) -> int:
    """Remember how a fetch ended; returns the URL's consecutive failure count now.

    A success (stored, 304, gone) clears the failure count; a 304 keeps the validators we had
    unless new ones came, and moves the article's ``last_seen_at``. A failure counts up and
    keeps validators and feed date as they were, so the next run asks again.
    """
    with engine.begin() as conn:
        return record_in(conn, outcome)


# How a fetch ended, for the upsert: a success, a 304 (validators may be left out), a failure.
_SUCCESS, _NOT_MODIFIED, _FAILURE = "success", "not_modified", "failure"


@lru_cache(maxsize=8)
def upsert(dialect: str, kind: str = _SUCCESS) -> Insert:
    """The statement that records one fetch of a URL, built once per dialect and ``kind``.

    ``kind``: ``success`` (a stored page, a 404/410) sets the validators and clears the failure
    count; ``not_modified`` (a 304) does the same but keeps the validators we had unless new ones
    came; ``failure`` counts up and keeps validators and feed date as they were. Its parameters:
    ``page_params``, or those ``record_in`` gives.
    """
    if dialect not in SUPPORTED_DIALECTS:
        raise ValueError(f"the archive supports SQLite and PostgreSQL, not {dialect}")
    f = m.fetch_state
    ins = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(f)
    set_: dict[str, Any]
    if kind == _FAILURE:
        set_ = {
            "last_status": ins.excluded.last_status,
            "last_error": ins.excluded.last_error,
            "last_attempt_at": ins.excluded.last_attempt_at,
            "failures": f.c.failures + 1,
        }
    else:
        # A 304 may omit the validators: keep the ones that got it.
        keep = ("etag", "last_modified") if kind == _NOT_MODIFIED else ()
        set_ = {
            k: (func.coalesce(ins.excluded[k], f.c[k]) if k in keep else ins.excluded[k])
            for k in ("etag", "last_modified", "last_status")
        }
        set_ |= {
            "last_error": null(),
            "failures": literal_column("0"),
            # A page reached from a listing (no date) keeps the date a feed gave before.
            "feed_date": func.coalesce(ins.excluded.feed_date, f.c.feed_date),
            "last_attempt_at": ins.excluded.last_attempt_at,
            "last_success_at": ins.excluded.last_success_at,
        }
    return ins.on_conflict_do_update(index_elements=[f.c.url], set_=set_)


def page_upsert(dialect: str) -> Insert:
    """``upsert`` for a stored page (see ``page_params``).

    ``Archive.store_page`` runs it in the page's own transaction: the page and what the next run
    needs to know about it are written together or not at all.
    """
    return upsert(dialect, _SUCCESS)


def page_params(page: Page, now: str) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in page.headers.items()}
    return {
        "url": normalize_url(page.requested_url or page.url),
        "etag": headers.get("etag"),
        "last_modified": headers.get("last-modified"),
        "last_status": page.status,
        "last_error": None,
        "failures": 0,
        "feed_date": page.feed_date,
        "last_attempt_at": now,
        "last_success_at": now,
    }


def record_in(conn: Connection, outcome: FetchOutcome) -> int:
    """``record`` inside a transaction the caller holds."""
    url = normalize_url(outcome.url)
    now = utc_now_iso()
    values: dict[str, Any] = {
        "url": url,
        "last_status": outcome.status,
        "last_error": outcome.error,
        "last_attempt_at": now,
    }
    if outcome.error is None:
        kind = _NOT_MODIFIED if outcome.status == 304 else _SUCCESS
        values |= {
            "etag": outcome.etag,
            "last_modified": outcome.last_modified,
            "feed_date": outcome.feed_date,
            "failures": 0,
            "last_success_at": now,
        }
    else:
        kind = _FAILURE
        values["failures"] = 1
    stmt = upsert(conn.dialect.name, kind).returning(m.fetch_state.c.failures)
    failures = conn.execute(stmt, values).scalar_one()
    if outcome.status == 304:
        a = m.articles
        conn.execute(update(a).where(a.c.url == url).values(last_seen_at=now))
    return failures


def _newest(*dates: str | None) -> str | None:
    present = [d for d in dates if d]
    return max(present) if present else None
