"""Sitemaps read safely: a hostile DTD costs nothing, a bad ``<loc>`` loses nothing else.

Scrapy's sitemap reader (lxml with ``recover``) stops at a billion-laughs entity, losing every
``<loc>`` after it, and reads ``<loc>&xxe;</loc>`` as an empty URL (the site's home page). Here
the DTD is cut out before parsing (``xmlsafe``), and a ``<loc>`` that still names an entity (or
is empty) is reported and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from rsarchive.extract.xmlsafe import parse_xml


@dataclass
class SitemapDoc:
    type: str | None  # "urlset", "sitemapindex", or the root element's name (None: not XML)
    entries: list[dict[str, str]] = field(default_factory=list)  # loc, lastmod, ...
    skipped: list[str] = field(default_factory=list)  # why each bad <loc> was left out


def read_sitemap(body: bytes) -> SitemapDoc:
    """The entries of a sitemap or sitemap index, in order, and the ``<loc>``s left out."""
    root = parse_xml(body)
    if root is None:
        return SitemapDoc(None)
    doc = SitemapDoc(_local(root.tag))
    for node in root:
        if not isinstance(node.tag, str):
            continue
        entry: dict[str, str] = {}
        why = "no <loc>"
        for child in node:
            if not isinstance(child.tag, str):
                continue
            name = _local(child.tag)
            if name != "loc":
                entry.setdefault(name, (child.text or "").strip())
                continue
            text = (child.text or "").strip()
            refs = [c.text for c in child if isinstance(c, etree._Entity)]
            if refs:
                why = f"it names an entity ({refs[0]})"
            elif not text:
                why = "it is empty"
            else:
                entry["loc"] = text
        if "loc" in entry:
            doc.entries.append(entry)
        else:
            doc.skipped.append(why)
    return doc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
