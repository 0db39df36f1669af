"""Keep-reading teasers in a page (REBELMOUSE.md §3): each post of the ``current_page`` feed,
its visible excerpt only (the "keep reading" remainder and the toggle are not text)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from lxml.html import HtmlElement

from rsarchive.extract.body import image_url
from rsarchive.extract.metadata import parse_date
from rsarchive.extract.posts import (
    CATEGORY,
    KNOWN_TYPES,
    NEAREST_LINK,
    POSTS,
    Parts,
    class_post_id,
    dom_authors,
    note_drift,
    read_label,
)
from rsarchive.extract.text import block_text, inline_text, normalize_space, remove
from rsarchive.extract.xpath import X
from rsarchive.extract.xpath import has_class as _cls
from rsarchive.items import Author, Image, Teaser
from rsarchive.urls import normalize_url

# §3 teasers: what is hidden until "keep reading" is clicked
TEASER_HIDDEN = X(f".//*[{_cls('js-appear-on-expand')}]")
TEASER_TOGGLE = X(f".//*[{_cls('widget__show-more')} or {_cls('js-keep-reading')}]")


def page_teasers(blocks: list[HtmlElement], page_url: str, drift: list[str]) -> list[Teaser]:
    teasers: list[Teaser] = []
    for block in blocks:
        for post in POSTS(block):
            teaser = read_teaser(post, len(teasers), page_url, drift)
            if teaser is not None:
                teasers.append(teaser)
    return teasers


def read_teaser(post: HtmlElement, position: int, base: str, drift: list[str]) -> Teaser | None:
    parts = Parts([post])
    data = parts.data()
    head = parts.first("widget__headline-text")
    title = inline_text(head) if head is not None else ""
    href = head.get("href") if head is not None else None
    if head is not None and not href:
        link = NEAREST_LINK(head)
        href = link[0] if link else None
    if not title and data.get("data-headline"):
        title = normalize_space(data["data-headline"])
        note_drift(drift, "teaser_headline")
    if not href and data.get("data-post-url"):
        href = data["data-post-url"]
        note_drift(drift, "teaser_url")
    if not title or not href:
        return None

    category = CATEGORY(post)
    section = normalize_space(category[0]) if category else ""
    label = read_label(parts)[1]
    if label and label.casefold() != section.casefold() and label.lower() not in KNOWN_TYPES:
        # No data-category, or a syndication bucket in it: the printed section wins.
        section = label
        note_drift(drift, "teaser_section")

    authors = dom_authors(parts.all("social-author__name"), base)
    if not authors and data.get("data-authors"):
        authors = [Author(n.strip()) for n in data["data-authors"].split(",") if n.strip()]
        note_drift(drift, "teaser_authors")

    date_el = parts.first("social-date__text")
    date_raw = inline_text(date_el) if date_el is not None else None

    brief = parts.all("widget__brief")
    if brief:
        excerpt = "\n\n".join(t for t in (block_text(b) for b in brief) if t)
    else:
        body = parts.first("body-description")
        excerpt = ""
        if body is not None:
            body = copy.deepcopy(body)
            body.tail = None
            remove(TEASER_HIDDEN(body))
            remove(TEASER_TOGGLE(body))
            excerpt = block_text(body)
            if excerpt:
                note_drift(drift, "teaser_excerpt")

    hidden = parts.all("js-appear-on-expand")
    has_more = any(normalize_space("".join(h.itertext())) for h in hidden)

    return Teaser(
        position=position,
        url=normalize_url(href, base=base),
        title=title,
        post_id=post.get("elid") or class_post_id(post) or data.get("data-elid") or None,
        section=section or None,
        authors=authors,
        # The hidden post data carries the exact time; the visible date only the day.
        published_at=timestamp(data.get("data-created-ts")) or parse_date(date_raw),
        published_at_raw=date_raw or data.get("data-created-ts") or None,
        image=_teaser_image(parts, base, drift),
        excerpt=excerpt,
        has_more=has_more,
    )


def timestamp(value: str | None) -> str | None:
    """ISO UTC text for a Unix timestamp attribute (``data-created-ts``)."""
    if not value or not value.strip().isdigit():
        return None
    return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _teaser_image(parts: Parts, base: str, drift: list[str]) -> Image | None:
    """``.widget__image``, else the picture in ``.widget__head`` (real keep-reading teasers)."""
    candidates = [(el, False) for el in parts.all("widget__image")]
    candidates += [(el, True) for el in parts.all("widget__head")]
    for el, fallback in candidates:
        url = image_url(el, base)
        if url:
            if fallback:
                note_drift(drift, "teaser_image")
                img = el.find(".//img")
                el = img if img is not None else el
            cap = parts.first_of(("media-caption", None), ("photo-caption", None))
            cred = parts.first_of(("media-photo-credit", None), ("photo-credit", None))
            return Image(
                url=url,
                caption=inline_text(cap) if cap is not None else None,
                credit=inline_text(cred) if cred is not None else None,
                alt=normalize_space(el.get("aria-label") or el.get("alt")) or None,
            )
    return None
