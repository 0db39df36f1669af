"""The RebelMouse page object: main post, keep-reading teasers and their fields, with fallbacks.

The page-level selectors live at the top of this module (REBELMOUSE.md §1–2); the class names of
a post's parts in ``extract/posts.py``; a teaser's in ``extract/teasers.py``; what is chrome inside
a body, embeds and lazy images in ``extract/body.py``. When a primary source misses and a
fallback supplies the value, the field's name goes into ``ParsedPage.drift`` so the crawl can log
``layout_drift`` and count it: that is how a user learns the site changed. Fallback order, first
that gives a value wins (→ marks the fallbacks that are drift):

- post: ``article[elid]`` of the ``current_post`` blocks → bootstrap ``post.id``
  (``post_id``; ``post_block`` when no ``current_post`` block holds it)
- headline: ``h1.widget__headline .widget__headline-text`` → JSON-LD ``headline`` → ``og:title``
  → ``<title>`` minus the site name
- subtitle: ``.widget__subheadline-text`` → JSON-LD ``alternativeHeadline``
- section: ``data-category`` of the post's widget, unless the sections the page shows disagree
  (a syndication bucket such as "MSN" or "SmartNews"): those win, and that is drift. The shown
  section: ``.all-related-sections a`` → the ``Type | Section`` label → the breadcrumb →
  ``article:section``; then JSON-LD ``articleSection`` → body class ``section-<slug>``
- authors: ``.social-author__name`` → JSON-LD ``author`` → ``meta[name=author]`` and kin
- published/modified: ``article:*_time`` → JSON-LD ``date*`` → ``.social-date*__text``
- body: ``.body-description`` → ``div.body``
- tags: ``a.tags__item`` → ``article:tag`` → JSON-LD ``keywords`` → ``meta[name=keywords]`` →
  ``tag-<slug>`` classes of the post's widget (which also give named tags their page URL)
- lead image: ``og:image`` → ``.widget__image`` / ``img.rm-hero-media`` → JSON-LD ``image``
- teaser image: ``.widget__image`` → the picture in ``.widget__head``; teaser section:
  ``data-category``, unless the printed section disagrees (``teaser_section``)
- the whole page: no RebelMouse post block but an article (``og:type``, JSON-LD, ``<article>``):
  the generic extractor (``extract/generic.py``, drift ``whole_page``, no teasers)

JSON-LD is read inside ``<![CDATA[ ... ]]>`` too, as RebelMouse writes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

from lxml.html import HtmlElement

from rsarchive.extract.body import article_body, image_url
from rsarchive.extract.generic import generic_article, looks_like_article
from rsarchive.extract.metadata import (
    Metadata,
    jsonld_image,
    jsonld_keywords,
    jsonld_people,
    jsonld_text,
    parse_date,
    read_metadata,
)
from rsarchive.extract.posts import (
    CAPTION,
    CATEGORY,
    CREDIT,
    HEADLINE_TEXT,
    KNOWN_TYPES,
    POSTS,
    Parts,
    absolute,
    class_post_id,
    dom_authors,
    note_drift,
    read_label,
)
from rsarchive.extract.teasers import page_teasers
from rsarchive.extract.text import inline_text, normalize_space
from rsarchive.extract.tree import page_root
from rsarchive.extract.xpath import X
from rsarchive.extract.xpath import has_class as _cls
from rsarchive.items import Article, Author, Image, ParsedPage, Tag
from rsarchive.urls import is_home, join_url, normalize_url, same_site

PARSER_VERSION = "rebelmouse-2026.12"


# §1 blocks and posts. A whole-page search starts from the attribute it needs (``//@x/..``):
# libxml2 then tests the few elements that carry it, not every element of the page for it
# (the same nodes, in the same order, in a third of the time).
BLOCKS = X(f"//@data-source/parent::div[{_cls('posts-custom')}]")
POST_BY_ELID = X("//article[@elid=$elid]")
IN_BLOCK = X(f"ancestor::div[@data-source][{_cls('posts-custom')}][1]/@data-source")
BOOTSTRAP = X("//script[contains(., 'REBELMOUSE_BOOTSTRAP_DATA')]/text()")
BOOTSTRAP_POST_ID = re.compile(r'"post"\s*:\s*\{[^{}]*?"id"\s*:\s*"?(\d+)')

LEAD_IMAGE_ATTRS = ("data-runner-img-hd", "data-runner-src")
# The sections a reader sees (they win over data-category, which may be a syndication bucket):
# the links in .all-related-sections (a part, below), the breadcrumb.
BREADCRUMB = X(
    "(//@class[contains(., 'breadcrumb')] | //@aria-label[. = 'breadcrumb' or . = 'Breadcrumb'])"
    "/..//a[@href]"
)
# Tags as classes of the post's widget: <div class="widget post-partial tag-first-tag ...">.
# (the post's element and its wrappers up to its block: a walk up, cheaper than an XPath)
TAG_CLASS = re.compile(r"(?:^|\s)tag-([a-z0-9][a-z0-9-]*)(?=\s|$)")


def parse_page(doc: Any, url: str) -> ParsedPage:
    """Split a RebelMouse page into its main article (if any) and its keep-reading teasers.

    ``doc`` is the parsed page: a parsel ``Selector`` (what Scrapy already built for the
    response), an lxml ``HtmlElement``, or HTML text/bytes (parsed here). ``url`` is the URL the
    page was fetched from; relative links resolve against it and a canonical URL that points to
    another host is ignored.
    """
    root = page_root(doc)
    md = read_metadata(root)
    page = ParsedPage()
    if md.jsonld_invalid:
        page.warnings.append("jsonld_invalid")

    post_blocks: list[HtmlElement] = []
    feed_blocks: list[HtmlElement] = []
    for block in BLOCKS(root):
        source = block.get("data-source")
        # A block nested in another block belongs to the outer one.
        if IN_BLOCK(block):
            continue
        if source == "current_post":
            post_blocks.append(block)
        elif source == "current_page":
            feed_blocks.append(block)

    scope, post_id = _main_scope(root, md, post_blocks, page.drift)
    if scope:
        page.article = _article(root, md, scope, post_id, url, page)
    elif looks_like_article(root, md, rebelmouse_blocks=bool(feed_blocks)):
        # No RebelMouse post block, yet an article: the last resort reads it, the whole page
        # is drift, and its teasers are not guessed.
        canonical = _canonical_url(md, url, page.warnings)
        article = generic_article(root, md, canonical)
        if article is not None:
            article.slug = _slug(canonical, None)
            page.article = article
            page.drift.append("whole_page")
            return page
    page.teasers = page_teasers(feed_blocks, url, page.drift)
    return page


# -- the main post ---------------------------------------------------------------------------


def _main_scope(
    root: HtmlElement, md: Metadata, post_blocks: list[HtmlElement], drift: list[str]
) -> tuple[list[HtmlElement], str | None]:
    """The elements that render the page's own post (head block + body block, merged)."""
    post_id = None
    for block in post_blocks:
        for post in POSTS(block):
            post_id = post.get("elid") or class_post_id(post)
            if post_id:
                break
        if post_id:
            break
    if post_blocks:
        scope: list[HtmlElement] = []
        for block in post_blocks:
            posts = POSTS(block)
            if not posts:
                scope.append(block)
            scope.extend(
                p
                for p in posts
                if post_id is None or (p.get("elid") or class_post_id(p)) == post_id
            )
        if post_id is None:
            post_id = _bootstrap_post_id(root)
            if post_id:
                drift.append("post_id")
        return scope, post_id

    # No current_post block: a template change, or a page without a post (a listing).
    post_id = _bootstrap_post_id(root)
    if post_id:
        posts = [p for p in POST_BY_ELID(root, elid=post_id) if IN_BLOCK(p) != ["current_page"]]
        if posts:
            drift.append("post_block")
            return posts, post_id
    return [], None


def _bootstrap_post_id(root: HtmlElement) -> str | None:
    for script in BOOTSTRAP(root):
        m = BOOTSTRAP_POST_ID.search(script)
        if m:
            return m.group(1)
    return None


def _pick(field: str, drift: list[str], primary: Any, *fallbacks: Callable[[], Any]) -> Any:
    """The primary value, else the first fallback that gives one (noted as drift)."""
    if primary:
        return primary
    for fallback in fallbacks:
        value = fallback()
        if value:
            drift.append(field)
            return value
    return primary


def _article(
    root: HtmlElement,
    md: Metadata,
    scope: list[HtmlElement],
    post_id: str | None,
    page_url: str,
    page: ParsedPage,
) -> Article:
    drift = page.drift
    ld = md.jsonld
    url = _canonical_url(md, page_url, page.warnings)
    parts = Parts(scope)

    headline_el = next(
        (t for h1 in parts.all("widget__headline", tag="h1") for t in HEADLINE_TEXT(h1)), None
    )
    title = _pick(
        "headline",
        drift,
        inline_text(headline_el) if headline_el is not None else "",
        lambda: jsonld_text(ld, "headline"),
        lambda: md.first("og:title", "twitter:title"),
        lambda: _strip_site_name(md.title, md),
    )
    sub_el = parts.first("widget__subheadline-text")
    subtitle = _pick(
        "subtitle",
        drift,
        inline_text(sub_el) if sub_el is not None else "",
        lambda: jsonld_text(ld, "alternativeHeadline"),
    )

    kind, label_section = read_label(parts)
    category = normalize_space(next((c for el in scope for c in CATEGORY(el) if c.strip()), ""))
    visible, bucket = _section(category, root, parts, md, label_section)
    section = _pick(
        "section",
        drift,
        category,
        lambda: visible,
        lambda: jsonld_text(ld, "articleSection"),
        lambda: _body_class_section(root),
    )
    if bucket:
        # data-category may name a syndication bucket ("MSN", "SmartNews"), not the section a
        # reader sees: what the page shows wins, and the disagreement is drift.
        section = visible
        note_drift(drift, "section")
    # A bare label that names a type ("Analysis") is not the section.
    if kind is None and label_section and label_section.lower() in KNOWN_TYPES:
        kind = label_section if section and section != label_section else None

    authors = (
        _pick(
            "authors",
            drift,
            dom_authors(parts.all("social-author__name"), page_url),
            lambda: [Author(n, absolute(u, page_url)) for n, u in jsonld_people(ld)],
            lambda: _meta_authors(md),
        )
        or []
    )

    published_raw = _raw_date("published", md, parts, drift)
    modified_raw = _raw_date("modified", md, parts, drift)

    body_el = parts.first("body-description")
    if body_el is None:
        body_el = parts.first("body", tag="div")
        if body_el is not None:
            drift.append("body")
    body_html, body_text, images = "", "", []
    if body_el is not None:
        body_html, body_text, images = article_body(body_el, page_url)

    slugs = _tag_slugs(scope)
    tags = (
        _pick(
            "tags",
            drift,
            _dom_tags(parts.all("tags__item", tag="a"), page_url),
            lambda: _named_tags(md.all("article:tag"), slugs, page_url),
            lambda: _named_tags(jsonld_keywords(ld), slugs, page_url),
            lambda: _named_tags(md.keywords(), slugs, page_url),
            lambda: [Tag(s.replace("-", " "), _tag_url(s, page_url)) for s in slugs],
        )
        or []
    )

    return Article(
        url=url,
        title=title or "",
        post_id=post_id,
        slug=_slug(url, post_id),
        subtitle=subtitle or None,
        type=kind,
        section=section or None,
        authors=authors,
        tags=tags,
        published_at=parse_date(published_raw),
        published_at_raw=published_raw or None,
        modified_at=parse_date(modified_raw),
        modified_at_raw=modified_raw or None,
        image=_lead_image(parts, md, page_url, drift),
        images=images,
        body_text=body_text,
        body_html=body_html,
        word_count=len(body_text.split()),
        language=(root.get("lang") or md.first("og:locale") or "").split("-")[0].split("_")[0]
        or None,
    )


# published/modified: the <meta>, the JSON-LD key, the layout's date element
_DATE_SOURCES = {
    "published": ("article:published_time", "datePublished", "social-date__text"),
    "modified": ("article:modified_time", "dateModified", "social-date-modified__text"),
}


def _raw_date(which: str, md: Metadata, parts: Parts, drift: list[str]) -> str | None:
    meta, ld_key, cls = _DATE_SOURCES[which]
    el = parts.first(cls)
    return _pick(
        f"{which}_at",
        drift,
        md.first(meta),
        lambda: jsonld_text(md.jsonld, ld_key),
        lambda: inline_text(el) if el is not None else None,
    )


def _canonical_url(md: Metadata, page_url: str, warnings: list[str]) -> str:
    for candidate in (md.canonical, md.first("og:url")):
        if not candidate:
            continue
        url = normalize_url(candidate, base=page_url)
        # www.example.org and example.org are one site; another host is not.
        if not same_site(url, page_url):
            warnings.append("canonical_offsite")
        elif not is_home(url):
            return url
    return normalize_url(page_url)


def _strip_site_name(title: str | None, md: Metadata) -> str | None:
    if not title:
        return None
    site = md.first("og:site_name") or "Responsible Statecraft"
    for sep in (" - ", " | ", " — ", " – "):
        suffix = f"{sep}{site}"
        if title.endswith(suffix):
            return title[: -len(suffix)].strip() or None
    return title


def _shown_sections(
    root: HtmlElement, parts: Parts, md: Metadata, label_section: str | None
) -> Iterator[str]:
    """The sections a reader sees, in order of trust: the post's section links, its label
    (unless it names a type), the breadcrumb's top level, ``article:section``."""
    for holder in parts.all("all-related-sections"):
        for link in holder.iter("a"):
            text = inline_text(link) if link.get("href") else ""
            if text:
                yield text
    if label_section and label_section.lower() not in KNOWN_TYPES:
        yield label_section
    crumbs = [t for t in (inline_text(a) for a in BREADCRUMB(root)) if t]
    crumbs = [t for t in crumbs if t.casefold() not in ("home", "responsible statecraft")]
    if crumbs:
        yield crumbs[0]  # the top level under "Home": the section, not a sub-topic
    shown = md.first("article:section")
    if shown:
        yield shown


def _section(
    category: str, root: HtmlElement, parts: Parts, md: Metadata, label: str | None
) -> tuple[str | None, bool]:
    """(the section the page shows, whether it overrules ``data-category``).

    ``data-category`` stands when the page shows it among its sections (a post has several);
    when it shows none of them it is a syndication bucket ("MSN", "SmartNews")."""
    first = None
    for name in _shown_sections(root, parts, md, label):
        if category and name.casefold() == category.casefold():
            return category, False
        first = first or name
    return first, bool(category and first)


def _tag_slugs(scope: list[HtmlElement]) -> list[str]:
    """The ``tag-<slug>`` classes RebelMouse puts on the post's widget, in order."""
    slugs: dict[str, None] = {}
    for el in scope:
        for wrapper in chain([el], el.iterancestors()):
            classes = wrapper.get("class") or ""
            if "posts-custom" in classes:
                break  # the block: beyond it is the page, not the post
            if "tag-" in classes:
                slugs.update(dict.fromkeys(TAG_CLASS.findall(classes)))
    return list(slugs)


def _named_tags(names: list[str], slugs: list[str], base: str) -> list[Tag]:
    """Tags from names (metas, JSON-LD); the tag page URL when the widget names its slug."""
    known = set(slugs)
    tags: dict[str, Tag] = {}
    for name in names:
        slug = _slugify(name)
        if name not in tags:
            tags[name] = Tag(name, _tag_url(slug, base) if slug in known else None)
    return list(tags.values())


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-")


def _tag_url(slug: str, base: str) -> str:
    return normalize_url(f"/tag/{slug}/", base=base)


def _body_class_section(root: HtmlElement) -> str | None:
    body = root.find("body")
    classes = (body.get("class") or "") if body is not None else ""
    for cls in classes.split():
        if cls.startswith("section-") and len(cls) > 8:
            return cls[8:].replace("-", " ").title()
    return None


_AUTHOR_SPLIT = re.compile(r"\s*(?:,|\band\b|&)\s*")


def _meta_authors(md: Metadata) -> list[Author]:
    for key in ("author", "cxenseparse:author", "article:author"):
        names = [n for v in md.all(key) for n in _AUTHOR_SPLIT.split(v) if n.strip()]
        if names and not all(n.startswith("http") for n in names):
            return [Author(n.strip()) for n in dict.fromkeys(names) if not n.startswith("http")]
    return []


def _dom_tags(elements: list[HtmlElement], base: str) -> list[Tag]:
    tags: dict[str, Tag] = {}
    for el in elements:
        name = inline_text(el)
        if name and name not in tags:
            tags[name] = Tag(name, absolute(el.get("href"), base))
    return list(tags.values())


def _slug(url: str, post_id: str | None) -> str | None:
    path = urlsplit(url).path.rstrip("/")
    slug = path.rsplit("/", 1)[-1] if path else ""
    if post_id and slug.endswith(f"-{post_id}"):
        slug = slug[: -len(post_id) - 1]
    return slug or None


def _lead_image(parts: Parts, md: Metadata, base: str, drift: list[str]) -> Image | None:
    dom = next(
        (el for el in parts.all("widget__image") if any(el.get(a) for a in LEAD_IMAGE_ATTRS)),
        None,
    )
    if dom is None:
        dom = parts.first("rm-hero-media", tag="img")
    url = _pick(
        "image",
        drift,
        md.first("og:image", "og:image:url"),
        lambda: image_url(dom, base) if dom is not None else None,
        lambda: jsonld_image(md.jsonld),
    )
    if not url:
        return None
    alt = None
    if dom is not None:
        alt = dom.get("aria-label") or dom.get("alt") or dom.get("title")
        img = dom.find(".//img") if dom.tag != "img" else None
        if not alt and img is not None:
            alt = img.get("alt")
    alt = normalize_space(alt or md.first("og:image:alt")) or None
    caption = parts.first_of(*CAPTION, outside_body=True)
    credit = parts.first_of(*CREDIT, outside_body=True)
    return Image(
        url=join_url(base, url),
        caption=inline_text(caption) if caption is not None else None,
        credit=inline_text(credit) if credit is not None else None,
        alt=alt,
    )
