"""RSS 2.0 (and Atom) feeds: the posts a feed lists, with the newest date it gives for each.

Parsed with lxml with entity expansion and network access off, as Scrapy's sitemap parser does:
a feed is untrusted input.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from lxml import etree

from rsarchive.extract.metadata import parse_date
from rsarchive.extract.xmlsafe import parse_xml
from rsarchive.urls import normalize_url

# Item date elements, any of which may carry the post's latest change (RebelMouse RSS gives
# pubDate; the others are what WordPress-era and Atom feeds use). The newest wins.
RSS_ITEMS = etree.XPath("//*[local-name()='item' or local-name()='entry']")
ITEM_LINK = etree.XPath(
    "*[local-name()='link'][not(@rel) or @rel='alternate']/@href"
    " | *[local-name()='link'][not(@href)]/text()"
)
ITEM_GUID = etree.XPath("*[local-name()='guid'][not(@isPermaLink='false')]/text()")
ITEM_DATES = etree.XPath(
    "*[local-name()='pubDate' or local-name()='updated' or local-name()='published'"
    " or local-name()='modified' or local-name()='date']/text()"
)


@dataclass
class FeedEntry:
    url: str  # absolute, as the feed writes it
    date: str | None = None  # ISO UTC, the newest date the item gives
    date_raw: str | None = None


def parse_feed(body: bytes, base: str) -> list[FeedEntry]:
    """The items of an RSS 2.0 or Atom feed, in feed order (an unreadable feed gives none)."""
    if not body.strip():
        return []
    # Without its DTD: a billion-laughs entity loses no item, an external one is never read.
    root = parse_xml(body)
    if root is None:
        return []
    entries: dict[str, FeedEntry] = {}
    for item in RSS_ITEMS(root):
        links = [str(v).strip() for v in ITEM_LINK(item) if str(v).strip()]
        links = links or [str(v).strip() for v in ITEM_GUID(item) if str(v).strip()]
        if not links:
            continue
        url = urljoin(base, links[0])
        best: tuple[str, str] | None = None
        for raw in ITEM_DATES(item):
            raw = str(raw).strip()
            iso = parse_date(raw)
            if iso and (best is None or iso > best[0]):
                best = (iso, raw)
        entry = FeedEntry(url, *(best or (None, None)))
        entries.setdefault(normalize_url(url), entry)
    return list(entries.values())
