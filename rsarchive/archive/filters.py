"""What a user asks the archive for, made safe to query with: dates in any form people write
them, the filters of ``search``, ``list`` and ``export``, names folded for comparison, and the
forms a URL may have been archived under. ``queries.Reader`` applies them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from dateutil.parser import isoparse
from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    ColumnElement,
    Select,
    func,
    literal_column,
    select,
    text,
)

from . import models as m
from .opening import (
    FTS_TABLE,
    BadDate,
)

# -- user input ----------------------------------------------------------------------------------

_PRECISION = (
    (re.compile(r"\d{4}"), relativedelta(years=1)),
    (re.compile(r"\d{4}-\d{2}"), relativedelta(months=1)),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), relativedelta(days=1)),
)


def date_bound(value: str, *, end: bool = False) -> str:
    """The archive's time text for a ``--since`` (``end=False``) or ``--until`` (``end=True``).

    ``YYYY``, ``YYYY-MM`` and ``YYYY-MM-DD`` name a whole year, month or day: ``--until 2021``
    includes all of 2021, so the end bound is the first instant after it (compare with ``<``).
    A full ISO 8601 time is an instant (UTC when it names no zone).
    """
    text = value.strip()
    try:
        when = isoparse(text)
    except (ValueError, OverflowError):
        raise BadDate(
            f"bad date {value!r}: use YYYY, YYYY-MM, YYYY-MM-DD or ISO 8601 (2021-05-19T14:03:00Z)"
        ) from None
    step = next((s for pattern, s in _PRECISION if pattern.fullmatch(text)), None)
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    if end:
        # A whole period ends where the next begins; an instant is included (<= via +1 s).
        when = when + step if step else when + relativedelta(seconds=1)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _like_contains(col: ColumnElement[Any], value: str) -> ColumnElement[bool]:
    return func.lower(col).contains(value.lower(), autoescape=True)


@dataclass(frozen=True)
class Filters:
    """The filters ``search``, ``list`` and ``export`` share (None: no filter)."""

    author: str | None = None
    section: str | None = None
    type: str | None = None
    since: str | None = None
    until: str | None = None
    tag: str | None = None
    #: The ids of the authors and tags that ``author`` and ``tag`` name (``Reader.resolve``
    #: fills them in, matching without case or accents: ``jose`` finds José).
    author_ids: tuple[int, ...] | None = None
    tag_ids: tuple[int, ...] | None = None

    @classmethod
    def from_strings(cls, **values: str | None) -> Filters:
        """From user input; dates in any form ``date_bound`` takes (``BadDate`` otherwise)."""
        since, until = values.pop("since", None), values.pop("until", None)
        return cls(
            **values,
            since=date_bound(since) if since else None,
            until=date_bound(until, end=True) if until else None,
        )

    def clauses(self) -> list[ColumnElement[bool]]:
        """WHERE clauses on ``articles``."""
        a = m.articles
        return self._row_clauses() + [a.c.id.in_(ids) for ids in self._linked_ids()]

    def fts_clauses(self, rowid: ColumnElement[int]) -> list[ColumnElement[bool]]:
        """Clauses on ``rowid`` for a full-text query, each checked on a match before bm25 is
        computed (bm25 is most of a search's cost: a filtered search scores only the matches
        that pass), none reading the article row of every match (~1 µs each, more than bm25).

        Authors, tags and dates: ``rowid + 0 IN (ids from an index)``, a list SQLite builds
        once (``+ 0`` keeps FTS5 from taking it as its rowid constraint: it would then run the
        MATCH once per listed id, 0.5 s instead of 5 ms for a year on 100k articles). Section
        and type: a probe per match of the index on ``lower(section)`` (or ``lower(type)``,
        migration 0008) for (value, rowid), which does not grow with the share of the archive
        that passes as a list does (~0.3 µs an id to build): with a section holding 73% of 100k
        articles, 11.9 ms against 20 ms for a list (4.2 against 5.4 ms the other way at 10%).
        """
        linked, dates, kinds = self._linked_ids(), self._date_clauses(), self._kinds()
        if not (linked or dates or kinds):
            return []
        unindexed = rowid + literal_column("0")
        out = [unindexed.in_(ids) for ids in linked]
        if dates:
            out.append(unindexed.in_(select(m.articles.c.id).where(*dates)))
        if kinds:
            # SQLite prefers the primary key for ``id = rowid``, which reads the whole article
            # row; INDEXED BY makes it seek (lower(...), rowid) in the index instead. The
            # dialect renders no table hints, hence text (the values stay bound parameters).
            index = f"ix_articles_lower_{kinds[0][0]}"
            checks = " AND ".join(f"lower({name}) = :row_{name}" for name, _ in kinds)
            out.append(
                text(
                    f"EXISTS (SELECT 1 FROM articles INDEXED BY {index} "
                    f"WHERE articles.id = {FTS_TABLE}.rowid AND {checks})"
                ).bindparams(**{f"row_{name}": value for name, value in kinds})
            )
        return out

    def _kinds(self) -> list[tuple[str, str]]:
        """(column, lowercased value) of the section and type filters."""
        return [
            (name, value.lower())
            for name, value in (("section", self.section), ("type", self.type))
            if value
        ]

    def _date_clauses(self) -> list[ColumnElement[bool]]:
        a = m.articles
        out: list[ColumnElement[bool]] = []
        if self.since:
            out.append(a.c.published_at >= self.since)
        if self.until:
            out.append(a.c.published_at < self.until)
        return out

    def _row_clauses(self) -> list[ColumnElement[bool]]:
        """Clauses on the article row itself: section and type (no case), dates."""
        a = m.articles
        kinds = [func.lower(a.c[name]) == value for name, value in self._kinds()]
        return kinds + self._date_clauses()

    def _linked_ids(self) -> list[Select]:
        """Selects of the article ids that the author and tag filters let through."""
        aa, au, at, tg = m.article_authors, m.authors, m.article_tags, m.tags
        out = []
        if self.author and self.author_ids is not None:
            out.append(select(aa.c.article_id).where(aa.c.author_id.in_(self.author_ids)))
        elif self.author:  # not resolved: SQL's own matching (case, not accents)
            out.append(
                select(aa.c.article_id)
                .join(au, au.c.id == aa.c.author_id)
                .where(_like_contains(au.c.name, self.author))
            )
        if self.tag and self.tag_ids is not None:
            out.append(select(at.c.article_id).where(at.c.tag_id.in_(self.tag_ids)))
        elif self.tag:
            out.append(
                select(at.c.article_id)
                .join(tg, tg.c.id == at.c.tag_id)
                .where(func.lower(tg.c.name) == self.tag.lower())
            )
        return out


def fold(text: str) -> str:
    """Text for matching names: no case, no accents (``José Martí`` -> ``jose marti``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def url_variants(url: str) -> list[str]:
    """``url`` and the forms the archive may hold it in: with or without ``www.``, over
    http or https (a link pasted from an old page; the site redirects between them)."""
    out = []
    for host_form in (url, _toggle_www(url)):
        scheme, sep, rest = host_form.partition("://")
        other = {"http": "https", "https": "http"}.get(scheme)
        out += [host_form, *([f"{other}{sep}{rest}"] if other else [])]
    return list(dict.fromkeys(out))


def _toggle_www(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if rest.startswith("www."):
        return f"{scheme}{sep}{rest[4:]}"
    return f"{scheme}{sep}www.{rest}"
