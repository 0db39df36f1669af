"""A bound on tree depth: a page nested deeper than any real page is flattened, then read.

Readers of the tree (text walkers, serialisers, sanitisers) recurse once per level, and
libxml2's HTML parser stops at 2048 levels, dropping the rest of the page (the teasers with it).
A hostile page nests 50,000 ``<div>``s. Such a page is re-parsed from its markup with every tag
past ``MAX_DEPTH`` levels left out (their text kept), so nothing is lost and nothing recurses
deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

from html.parser import HTMLParser

from lxml.html import HtmlElement

#: Far deeper than any real page (RebelMouse pages nest about 30 levels), far below Python's
#: recursion limit (1000) and libxml2's depth limit (2048).
MAX_DEPTH = 200

_VOID = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr")
)  # fmt: skip


def too_deep(root: HtmlElement, max_depth: int = MAX_DEPTH) -> bool:
    """True when the tree has an element ``max_depth`` levels below ``root``.

    One XPath step per level (libxml2 walks the levels, no Python recursion); on a normal page
    the first empty level ends it.
    """
    return bool(root.xpath("*/" * (max_depth - 1) + "*"))


def flatten_markup(text: str, max_depth: int = MAX_DEPTH) -> str:
    """The page's markup with the tags nested deeper than ``max_depth`` left out (text kept)."""
    flattener = _Flattener(max_depth)
    flattener.feed(text)
    flattener.close()
    return "".join(flattener.out)


class _Flattener(HTMLParser):
    """A tokenizer (no tree, no recursion) that copies markup, keeping the open tags in a stack
    as a browser does: an end tag closes up to its opening tag."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(convert_charrefs=False)
        self.max_depth = max_depth
        self.out: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, written)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        written = len(self.stack) < self.max_depth
        if written:
            self.out.append(self.get_starttag_text() or "")
        if tag not in _VOID:
            self.stack.append((tag, written))

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if len(self.stack) < self.max_depth:
            self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                written = self.stack[i][1]
                del self.stack[i:]
                if written:
                    self.out.append(f"</{tag}>")
                return

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.out.append(f"<![{data}]>")
