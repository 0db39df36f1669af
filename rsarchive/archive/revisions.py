"""An article's history: its revisions in order (``queries.Reader.history`` reads them)."""

from __future__ import annotations

import difflib
import json
import re
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
        # In the order the versions were seen: a back-fill adds older ones after newer ones.
        .order_by(r.c.captured_at, r.c.id)
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


# -- what changed between two versions (`rsarchive diff`, the web view's article page) ----------


def _signed(n: int) -> str:
    return f"+{n:,}" if n > 0 else f"{n:,}" if n < 0 else "±0"


def changes(old: Version, new: Version) -> list[str]:
    """What differs between two versions, in words (empty: the same content)."""
    out = []
    if old.title != new.title:
        out.append("title")
    if (old.subtitle or "") != (new.subtitle or ""):
        out.append("subtitle")
    if old.body_text != new.body_text:
        out.append(
            f"body: {_signed(new.words - old.words)} words, "
            f"{_signed(len(new.body_text) - len(old.body_text))} chars"
        )
    if old.authors != new.authors:
        gone = [a for a in old.authors if a not in new.authors]
        came = [a for a in new.authors if a not in old.authors]
        moved = "" if gone or came else "order"
        out.append(
            "authors " + " ".join([*(f"-{a}" for a in gone), *(f"+{a}" for a in came)] or [moved])
        )
    return out


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n") if p.strip()]


def word_ops(old: str, new: str) -> list[tuple[str, str]]:
    """``old`` -> ``new`` as (op, words): ``=`` kept, ``-`` removed, ``+`` added, in order."""
    a, b = re.findall(r"\S+", old), re.findall(r"\S+", new)
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("=", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("+", " ".join(b[j1:j2])))
    return out


@dataclass(slots=True)
class Hunk:
    """Changed paragraphs with ``context`` unchanged ones around them; ``lines`` are
    (op, paragraph, word ops): ``=`` kept, ``-`` removed, ``+`` added, ``~`` edited in place
    (then the word ops say how)."""

    old_start: int
    old_end: int
    new_start: int
    new_end: int
    lines: list[tuple[str, str, list[tuple[str, str]]]]


def paragraph_hunks(old: list[str], new: list[str], context: int = 1) -> list[Hunk]:
    """The body's changes paragraph by paragraph; a paragraph replaced by one other is an edit
    (``~``) with its words compared."""
    hunks = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        lines: list[tuple[str, str, list[tuple[str, str]]]] = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [("=", p, []) for p in old[i1:i2]]
            elif tag == "replace" and i2 - i1 == j2 - j1:
                lines += [
                    ("~", n, word_ops(o, n)) for o, n in zip(old[i1:i2], new[j1:j2], strict=True)
                ]
            else:
                lines += [("-", p, []) for p in old[i1:i2]]
                lines += [("+", p, []) for p in new[j1:j2]]
        hunks.append(Hunk(first[1] + 1, last[2], first[3] + 1, last[4], lines))
    return hunks
