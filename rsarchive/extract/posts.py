"""A RebelMouse post's parts: the class names the parser reads (REBELMOUSE.md §2–3), found in
one scan of a post, and the readers the main post and its teasers share (label, byline)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from lxml import etree
from lxml.html import HtmlElement

from rsarchive.extract.text import inline_text
from rsarchive.extract.xpath import X
from rsarchive.extract.xpath import has_class as _cls
from rsarchive.items import Author
from rsarchive.urls import normalize_url

# A post (main or teaser) and the widget around it that names its category.
POSTS = X(f".//article[@elid or {_cls('page-article')}]")
CATEGORY = X("ancestor-or-self::*[@data-category][1]/@data-category")
POST_CLASS = re.compile(r"(?:^|\s)post-(\d{4,})(?:\s|$)")

# §2 main article fields and §3 teaser fields: the class names the parser reads. One plain
# ``iter`` over a scope finds them all: over a post's few dozen elements it is cheaper than an
# XPath (libxml2 pays for every attribute test and for its set-up on each call), and a set
# lookup per class value (cached: ``part_classes``) cheaper than class tests inside an XPath.
PART_CLASSES = frozenset(
    {"widget__headline", "widget__headline-text", "widget__subheadline-text", "widget__section"}
    | {"social-author__name", "social-date__text", "social-date-modified__text"}
    | {"body", "body-description", "widget__brief", "js-appear-on-expand", "widget__show-more"}
    | {"js-keep-reading", "widget__image", "widget__head", "rm-hero-media", "tags__item"}
    | {"all-related-sections"}
    | {"media-caption", "photo-caption", "media-photo-credit", "photo-credit"}
)
HEADLINE_TEXT = X(f".//*[{_cls('widget__headline-text')}]")
# Inside an article body (any ancestor's class names one): a test in libxml2, not a walk up the
# page's ancestors in Python.
IN_BODY = X("boolean(ancestor::*[contains(@class, 'body-description')])")
# The link an element sits in or holds (bylines, headlines).
NEAREST_LINK = X("ancestor-or-self::a[@href][1]/@href | descendant::a[@href][1]/@href")

# Labels RS prints before "|" ("Analysis | Europe"); a bare label is a section unless it is one of
# these.
KNOWN_TYPES = frozenset(
    {"analysis", "reporting", "opinion", "news", "review", "interview", "explainer"}
    | {"podcast", "video", "commentary", "report", "essay"}
)


def class_post_id(el: HtmlElement) -> str | None:
    m = POST_CLASS.search(el.get("class") or "")
    return m.group(1) if m else None


def first_match(scope: Iterable[HtmlElement], xpath: Callable[..., list]) -> Any:
    for el in scope:
        found = xpath(el)
        if found:
            return found[0]
    return None


@lru_cache(maxsize=4096)
def part_classes(class_attr: str) -> frozenset[str]:
    """The part classes named in a ``class`` attribute. Templates repeat the same few hundred
    attribute values on every page, so the split and the set test are done once per value (the
    bound only keeps a site of unusual pages from growing it)."""
    return PART_CLASSES.intersection(class_attr.split())


class Parts:
    """The elements of a scope that carry the classes the parser reads, in document order."""

    def __init__(self, scope: Iterable[HtmlElement]) -> None:
        self.scope = list(scope)
        self.found: list[tuple[HtmlElement, frozenset[str]]] = []
        # The same elements by class, in document order: a post's fields ask for a dozen.
        self.by_class: dict[str, list[HtmlElement]] = {}
        for top in self.scope:
            for el in top.iter(etree.Element):
                class_attr = el.get("class")
                if class_attr and el is not top:  # the descendants of each scope element
                    classes = part_classes(class_attr)
                    if classes:
                        self.found.append((el, classes))
                        for cls in classes:
                            self.by_class.setdefault(cls, []).append(el)

    def all(self, cls: str, tag: str | None = None) -> list[HtmlElement]:
        found = self.by_class.get(cls, [])
        return list(found) if tag is None else [el for el in found if el.tag == tag]

    def first(self, cls: str, tag: str | None = None) -> HtmlElement | None:
        for el in self.by_class.get(cls, ()):
            if tag is None or el.tag == tag:
                return el
        return None

    def data(self) -> dict[str, str]:
        """The hidden ``span[data-post-url]`` of a teaser, as attributes."""
        for top in self.scope:
            for el in top.iter("span"):
                if el is not top and el.get("data-post-url") is not None:
                    return dict(el.attrib)
        return {}

    def first_of(
        self, *specs: tuple[str, str | None], outside_body: bool = False
    ) -> HtmlElement | None:
        """The first element (document order) matching any (class, tag) spec; optionally only
        one that is not inside the article body (a hero caption, not an inline one)."""
        wanted = {cls for cls, _ in specs}
        for el, c in self.found:
            if wanted.isdisjoint(c) or not any(
                cls in c and (tag is None or el.tag == tag) for cls, tag in specs
            ):
                continue
            if outside_body and IN_BODY(el):
                continue
            return el
        return None


# (class, tag) specs for captions and credits.
CAPTION = (("media-caption", "small"), ("photo-caption", None))
CREDIT = (("media-photo-credit", "small"), ("photo-credit", None))


def read_label(parts: Parts) -> tuple[str | None, str | None]:
    """(type, section) from the "Type | Section" label above the body."""
    texts = [t for t in (inline_text(a) for a in parts.all("widget__section", tag="a")) if t]
    texts = list(dict.fromkeys(texts))  # head and body blocks may both print it
    if len(texts) == 1 and "|" in texts[0]:
        texts = [t.strip() for t in texts[0].split("|") if t.strip()]
    if not texts:
        return None, None
    if len(texts) == 1:
        return None, texts[0]
    return texts[0], texts[-1]


def dom_authors(elements: list[HtmlElement], base: str) -> list[Author]:
    authors: dict[str, Author] = {}
    for el in elements:
        name = inline_text(el)
        if not name or name in authors:
            continue
        link = NEAREST_LINK(el)
        authors[name] = Author(name, absolute(link[0], base) if link else None)
    return list(authors.values())


def absolute(url: str | None, base: str) -> str | None:
    if not url or not url.strip():
        return None
    return normalize_url(url, base=base)


def note_drift(drift: list[str], name: str) -> None:
    if name not in drift:
        drift.append(name)
