"""The parsed page the parsers walk: the tree Scrapy built, with its element classes chosen in C.

lxml.html picks the class of every element proxy (``HtmlElement``, ``FormElement``...) in a
Python method, ``HtmlElementClassLookup.lookup``, called each time lxml hands an element to
Python: a parser walks a few hundred elements a page, and that call cost about a third of each.
The same choice made by lxml's own C lookups (a name registry for the five form elements over
a default of ``HtmlElement``, ``HtmlComment``...) gives every node the very class it had.
"""

from __future__ import annotations

from typing import Any

import lxml.html
from lxml import etree
from lxml.html import (
    HtmlComment,
    HtmlElement,
    HtmlElementClassLookup,
    HtmlEntity,
    HtmlProcessingInstruction,
)

HTML_CLASSES = etree.ElementNamespaceClassLookup(
    etree.ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
    )
)
for _name, _cls in HtmlElementClassLookup._default_element_classes.items():
    HTML_CLASSES.get_namespace(None)[_name] = _cls


def page_root(doc: Any) -> HtmlElement:
    """The root element of a parsed page: a parsel ``Selector`` (what Scrapy built for the
    response), an lxml ``HtmlElement``, or HTML text/bytes (parsed here)."""
    if isinstance(doc, HtmlElement):
        # Its parser may be lxml.html's shared one: its class lookup is not ours to change.
        return doc
    root = getattr(doc, "root", None)
    if not isinstance(root, HtmlElement):
        from parsel import Selector

        if isinstance(doc, bytes):
            doc = doc.decode("utf-8", "replace")
        root = Selector(text=doc, type="html").root
    # parsel parses each document with a parser of its own, so this changes only how this
    # page's elements reach Python, to the same classes. lxml.html's shared parsers (a
    # Selector made from a tree lxml.html parsed) are left as they are.
    parser = root.getroottree().parser
    if parser is not None and parser not in (lxml.html.html_parser, lxml.html.xhtml_parser):
        parser.set_element_class_lookup(HTML_CLASSES)
    return root
