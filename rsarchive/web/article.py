"""What the article page of `rsarchive serve` shows: one article as a reader sees it.

The row page of ``articles`` (``/<database>/articles/<id>``) renders ``templates/row.html`` with
the ``article`` built here from the archive's own reading code (``queries.Reader``): the
headline, byline, lead image, the sanitised body, the keep-reading teasers in order, the pages
that teased it, and its revisions with the latest change as a word diff. ``?_raw=1`` shows
Datasette's own row (every column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import lxml.html
import markupsafe

from rsarchive.archive.queries import Reader, open_reader
from rsarchive.archive.revisions import changes, paragraph_hunks, paragraphs
from rsarchive.extract.text import sanitize_html


@cache
def reader_for(path: str) -> Reader:
    """One read-only reader per served file, kept for the life of the server."""
    from rsarchive.archive.engine import sqlite_url

    return open_reader(sqlite_url(Path(path)))


def reader_date(value: str | None) -> str:
    """``2021-05-19T12:45:00Z`` as a reader reads it: ``May 19, 2021``."""
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return f"{when:%B} {when.day}, {when.year}"


def body_markup(html: str, *, images: bool) -> markupsafe.Markup:
    """Stored body HTML sanitised once more (an archive may come from an older version or
    another tool); with ``images`` false each image becomes a link to it."""
    clean = sanitize_html(html or "")
    if not clean:
        return markupsafe.Markup("")
    root = lxml.html.fragment_fromstring(clean, create_parent="div")
    for img in list(root.iter("img")):
        if images:
            img.set("loading", "lazy")
            img.attrib.pop("width", None)
            img.attrib.pop("height", None)
            continue
        link = lxml.html.Element("a", href=img.get("src") or "")
        link.text = f"[image: {img.get('alt') or img.get('src') or ''}]"
        link.tail = img.tail
        img.getparent().replace(img, link)
    for a in root.iter("a"):
        if not a.get("href"):
            a.tag = "span"  # a link whose target the sanitiser dropped: keep the words
    out = (root.text or "") + "".join(lxml.html.tostring(c, encoding="unicode") for c in root)
    # A second pass: the tree rewrite must not have let anything back in.
    return markupsafe.Markup(sanitize_html(out))


@dataclass
class Links:
    """Where things live in the served archive (Datasette URLs of one database)."""

    base: str  # the database's path, e.g. /rsarchive

    def article(self, article_id: int) -> str:
        return f"{self.base}/articles/{article_id}"

    def view(self, name: str, **params: str) -> str:
        return f"{self.base}/{name}" + (f"?{urlencode(params)}" if params else "")


@dataclass
class ArticlePage:
    """Everything the article template shows (see ``templates/row.html``)."""

    article: dict[str, Any]
    body: markupsafe.Markup
    published: str
    modified: str
    authors: list[dict[str, str]]
    tags: list[dict[str, str]]
    teasers: list[dict[str, Any]]
    teased_by: list[dict[str, Any]]
    revisions: list[dict[str, Any]]
    diff: dict[str, Any] | None
    links: dict[str, str] = field(default_factory=dict)


def article_page(reader: Reader, article_id: int, links: Links, *, images: bool) -> ArticlePage:
    art = reader.article(article_id)
    _, versions = reader.history(article_id)
    teasers = [
        {
            **t,
            "number": t["position"],  # counted from 1 by the reader
            "href": links.article(t["article_id"]) if t["archived"] else t["url"],
            "authors": _names(t["authors"]),
        }
        for t in art["teasers"]
    ]
    teased_by = [
        {
            **t,
            "number": t["position"],
            "href": links.article(t["page_article_id"]) if t["page_article_id"] else t["page_url"],
            "label": t["page_title"] or t["page_url"],
        }
        for t in art["teased_by"]
    ]
    revisions = [
        {
            "number": v.number,
            "seen": v.captured_at,
            "words": v.words,
            "parser": v.parser_version or "",
            "changes": "; ".join(changes(versions[i - 1], v)) if i else "first version",
        }
        for i, v in enumerate(versions)
    ]
    diff = None
    if len(versions) >= 2:
        old, new = versions[-2], versions[-1]
        diff = {
            "old": old.number,
            "new": new.number,
            "old_seen": old.captured_at,
            "new_seen": new.captured_at,
            "summary": "; ".join(changes(old, new)) or "same content",
            "fields": [
                (name, _shown(getattr(old, name)), _shown(getattr(new, name)))
                for name in ("title", "subtitle", "authors")
                if getattr(old, name) != getattr(new, name)
            ],
            "hunks": paragraph_hunks(paragraphs(old.body_text), paragraphs(new.body_text)),
        }
    return ArticlePage(
        article=art,
        body=body_markup(art["body_html"] or "", images=images),
        published=reader_date(art["published_at"]),
        modified=reader_date(art["modified_at"]),
        authors=[
            {**a, "href": links.view("author_articles", author=a["name"])} for a in art["authors"]
        ],
        tags=[{**t, "href": links.view("tag_articles", tag=t["name"])} for t in art["tags"]],
        teasers=teasers,
        teased_by=teased_by,
        revisions=revisions,
        diff=diff,
        links={
            "json": f"{links.article(article_id)}.json",
            "raw": f"{links.article(article_id)}?_raw=1",
            "row": links.view("articles", id=str(article_id)),
            "revisions": links.view("revisions", article_id=str(article_id)),
            "teasers": links.view("teaser_list", page_url=art["url"]),
            "original": art["url"],
        },
    )


def _names(value: list[str]) -> str:
    return ", ".join(value)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value)
    return value or ""
