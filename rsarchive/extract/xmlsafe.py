"""XML from the site (sitemaps, RSS) read without its DTD: no entity is declared, let alone
expanded or fetched.

lxml with ``recover`` stops at a billion-laughs entity and loses everything after it; an
external entity (``&xxe;``) must never be resolved. Sitemaps and feeds have no use for a DTD, so
it is cut out before parsing; an entity still named in the document stays an unresolved
reference (an ``etree._Entity`` node), which the readers skip.
"""

from __future__ import annotations

import re

from lxml import etree

# The document type declaration with its internal subset (entity declarations live there).
_DOCTYPE = re.compile(rb"<!DOCTYPE(?:[^\[>]|\[.*?\])*>", re.IGNORECASE | re.DOTALL)
# A DTD is at the top of a document; no need to look further for one.
_HEAD = 256 * 1024


def parse_xml(body: bytes) -> etree._Element | None:
    """The document's root element (recovering from errors), or None when there is none."""
    parser = etree.XMLParser(
        recover=True,
        remove_comments=True,
        remove_pis=True,
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
    )
    head = _DOCTYPE.sub(b"", body[:_HEAD], count=1)
    try:
        return etree.fromstring(head + body[_HEAD:], parser=parser)
    except etree.XMLSyntaxError:
        return None
