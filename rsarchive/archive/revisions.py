"""An article's history: its revisions in order (``queries.Reader.history`` reads them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from . import models as m


@dataclass(slots=True)
class Version:
    """One revision of an article; ``number`` counts from 1 in the order they were stored."""

    number: int
    id: int
    captured_at: str
    parser_version: str | None
    content_hash: str
    title: str
    subtitle: str | None
    body_text: str
    authors: list[str]
    capture_id: int | None

    @property
    def words(self) -> int:
        return len(self.body_text.split())

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "id": self.id,
            "captured_at": self.captured_at,
            "parser_version": self.parser_version,
            "content_hash": self.content_hash,
            "title": self.title,
            "subtitle": self.subtitle,
            "authors": self.authors,
            "words": self.words,
            "chars": len(self.body_text),
            "capture_id": self.capture_id,
        }


def article_versions(conn: Connection, article_id: int) -> list[Version]:
    """Every stored revision of an article, oldest first (revision ids grow with each store)."""
    r, a = m.revisions, m.articles
    rows = conn.execute(
        select(
            r.c.id,
            r.c.captured_at,
            r.c.parser_version,
            r.c.content_hash,
            r.c.title,
            r.c.subtitle,
            # The current revision keeps no body of its own: the article's is it (the store
            # writes the body into the revision before the article's changes).
            func.coalesce(r.c.body_text, a.c.body_text).label("body_text"),
            r.c.authors,
            r.c.capture_id,
        )
        .join(a, a.c.id == r.c.article_id)
        .where(r.c.article_id == article_id)
        .order_by(r.c.id)
    )
    return [
        Version(
            number=i,
            id=row.id,
            captured_at=row.captured_at,
            parser_version=row.parser_version,
            content_hash=row.content_hash,
            title=row.title,
            subtitle=row.subtitle,
            body_text=row.body_text or "",
            authors=revision_authors(row.authors),
            capture_id=row.capture_id,
        )
        for i, row in enumerate(rows, start=1)
    ]


def revision_authors(text: str | None) -> list[str]:
    """The byline stored with a revision: a JSON list of names, or, in archives written before
    it was one, the names joined with ", " (where "X, Jr." cannot be told from two names)."""
    if text and text.startswith("["):
        try:
            names = json.loads(text)
        except ValueError:
            names = None
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
    return [n.strip() for n in (text or "").split(", ") if n.strip()]
