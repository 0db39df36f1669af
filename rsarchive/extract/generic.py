"""The last resort: an article page with no RebelMouse post block, read by trafilatura.

The day the site changes its templates (or its CMS), pages stop having ``current_post`` blocks.
Rather than drop them, a page that still looks like an article (``og:type`` article, a JSON-LD
article node, an ``<article>`` element outside the RebelMouse blocks) is read by trafilatura,
the field's reference extractor, and stored with ``extractor = 'generic'``. The page's own
metadata (``<meta>``, JSON-LD) comes first; trafilatura's metadata fills what they lack. Its
keep-reading teasers are left empty rather than guessed. ``rsarchive reparse`` re-reads the page
with the RebelMouse parser once that recognises it again.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

from lxml.html import HtmlElement, fragment_fromstring

from rsarchive.extract.metadata import (
    Metadata,
    jsonld_image,
    jsonld_keywords,
    jsonld_people,
    jsonld_text,
    parse_date,
)
from rsarchive.extract.text import block_text, normalize_space, sanitize_html
from rsarchive.extract.xpath import X
from rsarchive.extract.xpath import has_class as _cls
from rsarchive.items import Article, Author, Image, Tag
from rsarchive.urls import normalize_url

# <article> elements that are not RebelMouse posts (those sit in posts-custom blocks).
LOOSE_ARTICLES = X(f"//article[not(ancestor::div[@data-source][{_cls('posts-custom')}])]")
# A byline link, to give an author found by name their page.
AUTHOR_LINKS = X(
    "//a[@href][@rel='author' or contains(@class, 'author') or contains(@href, '/author/')]"
)
TIME_ELEMENTS = X("//time[@datetime]/@datetime")
# Tag links of a byline or footer (``rel="tag"``), to give a tag found by name its page.
TAG_LINKS = X("//a[@href][contains(concat(' ', normalize-space(@rel), ' '), ' tag ')]")
_AUTHOR_SPLIT = re.compile(r"\s*;\s*")

EXTRACTOR = "generic"


def looks_like_article(root: HtmlElement, md: Metadata, *, rebelmouse_blocks: bool) -> bool:
    """``og:type`` article, a JSON-LD article node, or an ``<article>`` element on a page
    without RebelMouse blocks (on a listing, RebelMouse's own blocks are where its posts are):
    a listing or an error page is none of these."""
    return (
        (md.first("og:type") or "").lower() == "article"
        or md.jsonld is not None
        or (not rebelmouse_blocks and bool(LOOSE_ARTICLES(root)))
    )


def generic_article(root: HtmlElement, md: Metadata, url: str) -> Article | None:
    """The page read by trafilatura (``url`` is the article's normalised canonical URL); None
    when trafilatura finds no main text either."""
    # Imported here: only pages that reach the last resort pay for loading it.
    from trafilatura import extract
    from trafilatura.metadata import extract_metadata

    # trafilatura cleans the tree it is given: hand it copies, the page's tree is shared.
    html = extract(
        copy.deepcopy(root),
        url=url,
        output_format="html",
        include_comments=False,
        include_links=True,
        include_formatting=True,
        include_tables=True,
        include_images=False,
    )
    if not html:
        return None
    body_html = sanitize_html(html)
    body_text = block_text(fragment_fromstring(body_html or "<p></p>", create_parent="div"))
    if not body_text:
        return None
    ld = md.jsonld

    @cache
    def tm() -> Any:
        # trafilatura's own metadata only fills what the page's metadata lacks: read on first
        # need (a page with full <meta> and JSON-LD never pays for it, about a third of the
        # extractor's time).
        return extract_metadata(copy.deepcopy(root), default_url=url)

    title = jsonld_text(ld, "headline") or md.first("og:title", "twitter:title") or tm().title or ""
    names = jsonld_people(ld) or [
        (n, None) for n in _AUTHOR_SPLIT.split(tm().author or "") if n.strip()
    ]
    published_raw = (
        md.first("article:published_time")
        or jsonld_text(ld, "datePublished")
        or next(iter(TIME_ELEMENTS(root)), None)
        or tm().date
    )
    modified_raw = md.first("article:modified_time") or jsonld_text(ld, "dateModified")
    tags = md.all("article:tag") or jsonld_keywords(ld) or md.keywords() or list(tm().tags or [])
    image = md.first("og:image", "og:image:url") or jsonld_image(ld) or tm().image
    return Article(
        url=url,
        title=normalize_space(title),
        subtitle=jsonld_text(ld, "alternativeHeadline"),
        section=md.first("article:section")
        or jsonld_text(ld, "articleSection")
        or next(iter(tm().categories or []), None),
        authors=_authors(root, names, url),
        tags=_tags(root, tags, url),
        published_at=parse_date(published_raw),
        published_at_raw=published_raw or None,
        modified_at=parse_date(modified_raw),
        modified_at_raw=modified_raw or None,
        image=Image(url=normalize_url(image, base=url)) if image else None,
        body_text=body_text,
        body_html=body_html,
        word_count=len(body_text.split()),
        language=(root.get("lang") or md.first("og:locale") or tm().language or "")
        .split("-")[0]
        .split("_")[0]
        or None,
        extractor=EXTRACTOR,
    )


def _tags(root: HtmlElement, names: list[str], base: str) -> list[Tag]:
    links = {normalize_space(a.text_content()): a.get("href") for a in TAG_LINKS(root)}
    return [
        Tag(name, normalize_url(links[name], base=base) if links.get(name) else None)
        for name in dict.fromkeys(normalize_space(n) for n in names)
        if name
    ]


def _authors(root: HtmlElement, names: list[tuple[str, str | None]], base: str) -> list[Author]:
    links = {normalize_space(a.text_content()): a.get("href") for a in AUTHOR_LINKS(root)}
    authors: dict[str, Author] = {}
    for name, link in names:
        name = normalize_space(name)
        if name and name not in authors:
            href = link or links.get(name)
            authors[name] = Author(name, normalize_url(href, base=base) if href else None)
    return list(authors.values())
