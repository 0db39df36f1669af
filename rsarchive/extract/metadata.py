"""Page metadata: <meta> tags (OpenGraph, article:*, author), JSON-LD, and date parsing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as dateparser
from lxml.html import HtmlElement

_ARTICLE_TYPES = frozenset(
    {
        "NewsArticle",
        "Article",
        "ReportageNewsArticle",
        "AnalysisNewsArticle",
        "OpinionNewsArticle",
        "BlogPosting",
        "Report",
        "ScholarlyArticle",
    }
)

# Naive times on the page are the publisher's wall clock; Responsible Statecraft is in
# Washington, DC. (A date without a time stays a bare date.)
try:
    SITE_TZ: tzinfo = ZoneInfo("America/New_York")
except ZoneInfoNotFoundError:  # pragma: no cover - a system without tz data
    SITE_TZ = UTC


@dataclass
class Metadata:
    """<meta> values by lower-cased property/name, in document order, plus page-level bits."""

    meta: dict[str, list[str]] = field(default_factory=dict)
    canonical: str | None = None
    title: str | None = None
    jsonld: dict[str, Any] | None = None  # the article node, if any
    jsonld_invalid: bool = False

    def first(self, *keys: str) -> str | None:
        for key in keys:
            for value in self.meta.get(key, ()):
                value = value.strip()
                if value:
                    return value
        return None

    def all(self, key: str) -> list[str]:
        return [v.strip() for v in self.meta.get(key, ()) if v.strip()]

    def keywords(self) -> list[str]:
        """``<meta name="keywords" content="a, b">`` as a list."""
        return [k.strip() for v in self.all("keywords") for k in v.split(",") if k.strip()]


def read_metadata(root: HtmlElement) -> Metadata:
    md = Metadata()
    # <meta>, <link> and <title> belong in <head>; a broken page may have lost it.
    head = root.find("head")
    for el in (head if head is not None else root).iter("meta", "link", "title"):
        tag = el.tag
        if tag == "meta":
            content = el.get("content")
            key = el.get("property") or el.get("name") or el.get("itemprop")
            if content is not None and key:
                md.meta.setdefault(key.strip().lower(), []).append(content)
        elif tag == "link":
            if md.canonical is None and (el.get("rel") or "").strip().lower() == "canonical":
                md.canonical = (el.get("href") or "").strip() or None
        elif md.title is None:
            md.title = (el.text_content() or "").strip() or None
    md.jsonld, md.jsonld_invalid = _read_jsonld(root)
    return md


# RebelMouse wraps its JSON-LD in CDATA (``<![CDATA[ {...} ]]>``, sometimes behind ``//``): in
# HTML that is not markup, the script's text holds the wrapper verbatim.
_CDATA = re.compile(r"^\s*(?://\s*)?<!\[CDATA\[(.*?)(?://\s*)?\]\]>\s*$", re.S)


def _read_jsonld(root: HtmlElement) -> tuple[dict[str, Any] | None, bool]:
    """The first article node of the page's JSON-LD (in a list, an ``@graph`` or plain)."""
    invalid = False
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        raw = (script.text or "").strip()
        cdata = _CDATA.match(raw)
        if cdata:
            raw = cdata.group(1).strip()
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            # Broken templates happen; the DOM has the same facts.
            invalid = True
            continue
        for node in _nodes(data):
            types = node.get("@type")
            types = types if isinstance(types, list) else [types]
            if any(t in _ARTICLE_TYPES for t in types if isinstance(t, str)):
                return node, invalid
    return None, invalid


def _nodes(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [n for item in data for n in _nodes(item)]
    if isinstance(data, dict):
        graph = data.get("@graph")
        if isinstance(graph, list):
            return [data, *_nodes(graph)]
        return [data]
    return []


def jsonld_text(node: dict[str, Any] | None, key: str) -> str | None:
    if not node:
        return None
    value = node.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value")
    if isinstance(value, (str, int, float)):
        text = str(value).strip()
        return text or None
    return None


def jsonld_people(node: dict[str, Any] | None, key: str = "author") -> list[tuple[str, str | None]]:
    """(name, url) pairs of an author field that may be a string, an object or a list."""
    if not node:
        return []
    value = node.get(key)
    items = value if isinstance(value, list) else [value]
    people = []
    for item in items:
        if isinstance(item, str) and item.strip():
            people.append((item.strip(), None))
        elif isinstance(item, dict):
            name = item.get("name")
            if isinstance(name, str) and name.strip():
                url = item.get("url") or item.get("@id")
                # An @id is a page only when it is not a node reference (``.../#/schema/...``).
                if url is item.get("@id") and isinstance(url, str) and "#" in url:
                    url = None
                people.append((name.strip(), url if isinstance(url, str) else None))
    return people


def jsonld_keywords(node: dict[str, Any] | None) -> list[str]:
    if not node:
        return []
    value = node.get("keywords")
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    if isinstance(value, list):
        return [k.strip() for k in value if isinstance(k, str) and k.strip()]
    return []


def jsonld_image(node: dict[str, Any] | None) -> str | None:
    if not node:
        return None
    value = node.get("image")
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl")
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_date(raw: str | None) -> str | None:
    """ISO 8601 UTC text for a date found on a page, or None when it is not a date.

    ``2021-05-19T13:47:00-04:00`` -> ``2021-05-19T17:47:00Z``; a bare day (``May 19, 2021``,
    the layout's ``%B %d, %Y``) stays a day: ``2021-05-19``.
    """
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        if raw[:4].isdigit():  # ISO 8601
            if len(raw) == 10:
                return date.fromisoformat(raw).isoformat()
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        else:
            dt = dateparser.parse(raw)
            if ":" not in raw:  # a day, no time of day
                return dt.date().isoformat()
    except (ValueError, OverflowError, dateparser.ParserError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=SITE_TZ)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
