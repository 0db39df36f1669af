"""Text from HTML: whitespace normalisation, block-aware text, chrome removal and sanitising."""

from __future__ import annotations

from collections.abc import Iterable

import nh3
from lxml.html import HtmlElement

# Whitespace a browser collapses: str.split() knows the Unicode spaces (non-breaking ones
# included) but not the zero-width ones. Typographic characters (’ “ ” — …) are content.
_ZERO_WIDTH = ("\u200b", "\ufeff")

# Elements whose text starts a new paragraph in body_text.
BLOCK_TAGS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "blockquote", "pre"}
    | {"figure", "figcaption", "table", "tr", "section", "article", "aside", "header", "footer"}
    | {"dl", "dt", "dd", "hr"}
)
# Never text, wherever they are.
_DROP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "form"}
    | {"button", "input", "select", "textarea"}
)

# What a stored body may keep (nh3 allow-lists; anything else is removed, the text of unknown
# inline tags is kept). No script, iframe, object, event handler or javascript: URL survives.
_ALLOWED_TAGS = (
    {"p", "br", "hr", "a", "em", "strong", "b", "i", "u", "s", "sub", "sup", "small", "mark"}
    | {"blockquote", "q", "cite", "ul", "ol", "li", "h2", "h3", "h4", "h5", "h6", "pre", "code"}
    | {"figure", "figcaption", "img", "table", "thead", "tbody", "tr", "th", "td", "caption"}
    | {"dl", "dt", "dd", "span", "abbr", "time"}
)
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "abbr": {"title"},
}
_ALLOWED_CLASSES = {
    "p": {"pull-quote", "shortcode-media-rebelmouse-image"},
    "small": {"image-media", "media-caption", "media-photo-credit"},
}


def normalize_space(text: str | None) -> str:
    """Collapse runs of whitespace (incl. non-breaking spaces) to one space and strip."""
    if not text:
        return ""
    for char in _ZERO_WIDTH:
        if char in text:
            text = text.replace(char, " ")
    return " ".join(text.split())


def inline_text(el: HtmlElement) -> str:
    """The element's visible text on one line (scripts, styles and templates skipped)."""
    parts: list[str] = []
    _collect(el, parts, top=True)
    return normalize_space("".join(parts))


def _collect(el: HtmlElement, parts: list[str], top: bool = False) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in _DROP_TAGS:
        if not top and el.tail:
            parts.append(el.tail)
        return
    if tag == "br":
        parts.append(" ")
    elif tag and el.text:
        parts.append(el.text)
    for child in el:
        _collect(child, parts)
    if not top and el.tail:
        parts.append(el.tail)


def block_text(el: HtmlElement) -> str:
    """Visible text with one blank line between blocks (paragraphs, headings, list items).

    Inline whitespace is normalised; ``<br>`` becomes a line break inside its paragraph.
    """
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        # Called at both ends of every block, mostly with nothing gathered; and most blocks
        # hold no <br>: both are spared the line-by-line work.
        if not current:
            return
        joined = "".join(current)
        current.clear()
        if "\n" in joined:
            text = "\n".join(line for line in map(normalize_space, joined.split("\n")) if line)
        else:
            text = normalize_space(joined)
        if text:
            blocks.append(text)

    def walk(node: HtmlElement) -> None:
        tag = node.tag  # read once: lxml builds a new string at each read
        if not isinstance(tag, str) or tag in _DROP_TAGS:
            return  # a comment or a processing instruction (its tag is a function), or never text
        is_block = tag in BLOCK_TAGS
        if is_block:
            flush()
            if not len(node):
                # A block of bare text (most paragraphs) is its own text: no need to walk it.
                text = normalize_space(node.text)
                if text:
                    blocks.append(text)
                return
        if tag == "br":
            current.append("\n")
        else:
            text = node.text
            if text:
                current.append(text.replace("\n", " "))
        for child in node:
            walk(child)
            tail = child.tail
            if tail:
                if child.tag in BLOCK_TAGS:  # a comment's tag is a function: never a block
                    flush()
                current.append(tail.replace("\n", " "))
        if is_block:
            flush()

    walk(el)
    flush()
    return "\n\n".join(blocks)


def remove(elements: Iterable[HtmlElement]) -> None:
    """Remove elements from their tree, keeping the text that follows them."""
    for el in list(elements):
        if el.getparent() is not None:
            el.drop_tree()


# Built once: ``nh3.clean(html, **options)`` builds its sanitiser from the allow-lists on every
# call, which cost as much as cleaning a whole article body.
_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    allowed_classes=_ALLOWED_CLASSES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def sanitize_html(html: str) -> str:
    """Sanitise article HTML with nh3: an allow-list of tags, attributes and URL schemes."""
    return _CLEANER.clean(html).strip()


# Encodings a misconfigured server claims for what are really UTF-8 pages.
_SUSPECT_ENCODINGS = frozenset({"cp1252", "latin1", "latin-1", "iso8859-1", "iso-8859-1", "ascii"})


def trust_utf8(declared: str | None, body: bytes) -> bool:
    """True when a page labelled Latin-1/ASCII is in fact valid, non-ASCII UTF-8.

    Random Latin-1 text with accented letters is almost never valid UTF-8, so the bytes win.
    """
    if (declared or "").lower() not in _SUSPECT_ENCODINGS or body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def html_text(body: bytes, content_type: str | None) -> str:
    """Decode a stored page as Scrapy's ``TextResponse`` would, with the same UTF-8 rescue."""
    from w3lib.encoding import html_to_unicode

    encoding, text = html_to_unicode(content_type, body)
    if trust_utf8(encoding, body):
        return body.decode("utf-8")
    return text
