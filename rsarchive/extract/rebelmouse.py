"""The RebelMouse page object: main post, keep-reading teasers and their fields, with fallbacks.

Every selector lives at the top of this module (REBELMOUSE.md §1–3). When a primary selector
misses and a fallback supplies the value, the field's name goes into ``ParsedPage.drift`` so the
crawl can log ``layout_drift`` and count it: that is how a user learns the site changed.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from lxml import etree
from lxml.html import HtmlElement

from rsarchive.extract.metadata import (
    Metadata,
    jsonld_image,
    jsonld_keywords,
    jsonld_people,
    jsonld_text,
    parse_date,
    read_metadata,
)
from rsarchive.extract.text import (
    block_text,
    inline_text,
    normalize_space,
    remove,
    sanitize_html,
)
from rsarchive.items import Article, Author, Image, ParsedPage, Tag, Teaser
from rsarchive.urls import is_home, normalize_url, same_site

PARSER_VERSION = "rebelmouse-2026.11"


def _cls(name: str) -> str:
    """XPath test for a class name; the cheap ``contains`` first spares most elements the rest."""
    return (
        f"(contains(@class, '{name}') and "
        f"contains(concat(' ', normalize-space(@class), ' '), ' {name} '))"
    )


X = etree.XPath

# §1 blocks and posts
BLOCKS = X(f"//div[@data-source][{_cls('posts-custom')}]")
POSTS = X(f".//article[@elid or {_cls('page-article')}]")
POST_BY_ELID = X("//article[@elid=$elid]")
CATEGORY = X("ancestor-or-self::*[@data-category][1]/@data-category")
IN_BLOCK = X(f"ancestor::div[@data-source][{_cls('posts-custom')}][1]/@data-source")
BOOTSTRAP = X("//script[contains(., 'REBELMOUSE_BOOTSTRAP_DATA')]/text()")
POST_CLASS = re.compile(r"(?:^|\s)post-(\d{4,})(?:\s|$)")
BOOTSTRAP_POST_ID = re.compile(r'"post"\s*:\s*\{[^{}]*?"id"\s*:\s*"?(\d+)')

# §2 main article fields and §3 teaser fields: the class names the parser reads. One scan of a
# scope finds them all (every element with a class; the match is a set lookup in Python, which
# is several times faster than class tests inside libxml2's XPath).
PART_CLASSES = frozenset(
    {"widget__headline", "widget__headline-text", "widget__subheadline-text", "widget__section"}
    | {"social-author__name", "social-date__text", "social-date-modified__text"}
    | {"body", "body-description", "widget__brief", "js-appear-on-expand", "widget__show-more"}
    | {"js-keep-reading", "widget__image", "rm-hero-media", "tags__item"}
    | {"media-caption", "photo-caption", "media-photo-credit", "photo-credit"}
)
PARTS = X(".//*[@class or @data-post-url]")
HEADLINE_TEXT = X(f".//*[{_cls('widget__headline-text')}]")
# The link an element sits in or holds (bylines, headlines).
NEAREST_LINK = X("ancestor-or-self::a[@href][1]/@href | descendant::a[@href][1]/@href")
LEAD_IMAGE_ATTRS = ("data-runner-img-hd", "data-runner-src")

# Inside a body: what is chrome, what is an inline image.
_CHROME_CLASSES = frozenset(
    {"proper-ad-unit", "rs_ad_block", "ad-tag", "newsletter", "share-panel", "social-share"}
    | {"share-buttons", "widget__shares", "widget__show-more", "js-keep-reading"}
)
_CHROME_TAGS = frozenset({"script", "style", "noscript", "template"})
INLINE_IMAGES = X(f".//img[{_cls('rm-shortcode')} or not(ancestor::*[{_cls('rm-shortcode')}])]")
LINKS = X(".//a[@href] | .//img[@src]")
IMAGE_HOLDER = X(f"ancestor::*[{_cls('shortcode-media-rebelmouse-image')} or self::figure][1]")
IMAGE_CAPTION = X(f".//*[{_cls('media-caption')} or {_cls('photo-caption')} or self::figcaption]")
IMAGE_CREDIT = X(f".//*[{_cls('media-photo-credit')} or {_cls('photo-credit')}]")

# §3 teasers: what is hidden until "keep reading" is clicked
TEASER_HIDDEN = X(f".//*[{_cls('js-appear-on-expand')}]")
TEASER_TOGGLE = X(f".//*[{_cls('widget__show-more')} or {_cls('js-keep-reading')}]")

# Labels RS prints before "|" ("Analysis | Europe"); a bare label is a section unless it is one of
# these.
KNOWN_TYPES = frozenset(
    {"analysis", "reporting", "opinion", "news", "review", "interview", "explainer"}
    | {"podcast", "video", "commentary", "report", "essay"}
)
_PLACEHOLDER = re.compile(r"^data:|\.svg(?:$|\?)", re.IGNORECASE)


def parse_page(doc: Any, url: str) -> ParsedPage:
    """Split a RebelMouse page into its main article (if any) and its keep-reading teasers.

    ``doc`` is the parsed page: a parsel ``Selector`` (what Scrapy already built for the
    response), an lxml ``HtmlElement``, or HTML text/bytes (parsed here). ``url`` is the URL the
    page was fetched from; relative links resolve against it and a canonical URL that points to
    another host is ignored.
    """
    root = _root(doc)
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
    page.teasers = _teasers(feed_blocks, url, page.drift)
    return page


def _root(doc: Any) -> HtmlElement:
    if isinstance(doc, HtmlElement):
        return doc
    root = getattr(doc, "root", None)
    if isinstance(root, HtmlElement):
        return root
    from parsel import Selector

    if isinstance(doc, bytes):
        doc = doc.decode("utf-8", "replace")
    return Selector(text=doc, type="html").root


# -- the main post ---------------------------------------------------------------------------


def _main_scope(
    root: HtmlElement, md: Metadata, post_blocks: list[HtmlElement], drift: list[str]
) -> tuple[list[HtmlElement], str | None]:
    """The elements that render the page's own post (head block + body block, merged)."""
    post_id = None
    for block in post_blocks:
        for post in POSTS(block):
            post_id = post.get("elid") or _class_post_id(post)
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
                if post_id is None or (p.get("elid") or _class_post_id(p)) == post_id
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


def _class_post_id(el: HtmlElement) -> str | None:
    m = POST_CLASS.search(el.get("class") or "")
    return m.group(1) if m else None


def _bootstrap_post_id(root: HtmlElement) -> str | None:
    for script in BOOTSTRAP(root):
        m = BOOTSTRAP_POST_ID.search(script)
        if m:
            return m.group(1)
    return None


def _first(scope: Iterable[HtmlElement], xpath: Callable[..., list]) -> Any:
    for el in scope:
        found = xpath(el)
        if found:
            return found[0]
    return None


class _Parts:
    """The elements of a scope that carry the classes the parser reads, in document order."""

    def __init__(self, scope: Iterable[HtmlElement]) -> None:
        self.found: list[tuple[HtmlElement, frozenset[str]]] = []
        for top in scope:
            for el in PARTS(top):
                classes = PART_CLASSES.intersection((el.get("class") or "").split())
                if classes or el.get("data-post-url") is not None:
                    self.found.append((el, classes))

    def all(self, cls: str, tag: str | None = None) -> list[HtmlElement]:
        return [el for el, c in self.found if cls in c and (tag is None or el.tag == tag)]

    def first(self, cls: str, tag: str | None = None) -> HtmlElement | None:
        for el, c in self.found:
            if cls in c and (tag is None or el.tag == tag):
                return el
        return None

    def data(self) -> dict[str, str]:
        """The hidden ``span[data-post-url]`` of a teaser, as attributes."""
        for el, _ in self.found:
            if el.tag == "span" and el.get("data-post-url") is not None:
                return dict(el.attrib)
        return {}

    def first_of(
        self, *specs: tuple[str, str | None], outside_body: bool = False
    ) -> HtmlElement | None:
        """The first element (document order) matching any (class, tag) spec; optionally only
        one that is not inside the article body (a hero caption, not an inline one)."""
        for el, c in self.found:
            if not any(cls in c and (tag is None or el.tag == tag) for cls, tag in specs):
                continue
            if outside_body and any(
                "body-description" in (a.get("class") or "") for a in el.iterancestors()
            ):
                continue
            return el
        return None


# (class, tag) specs for captions and credits.
CAPTION = (("media-caption", "small"), ("photo-caption", None))
CREDIT = (("media-photo-credit", "small"), ("photo-credit", None))


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
    parts = _Parts(scope)

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

    kind, label_section = _label(parts)
    category = next((c for el in scope for c in CATEGORY(el) if c.strip()), None)
    section = _pick(
        "section",
        drift,
        normalize_space(category),
        lambda: label_section,
        lambda: jsonld_text(ld, "articleSection"),
        lambda: md.first("article:section"),
        lambda: _body_class_section(root),
    )
    # A bare label that names a type ("Analysis") is not the section.
    if kind is None and label_section and label_section.lower() in KNOWN_TYPES:
        kind = label_section if section and section != label_section else None

    authors = (
        _pick(
            "authors",
            drift,
            _dom_authors(parts.all("social-author__name"), page_url),
            lambda: [Author(n, _abs(u, page_url)) for n, u in jsonld_people(ld)],
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
    body_html, body_text, images = _body(body_el, page_url) if body_el is not None else ("", "", [])

    tags = (
        _pick(
            "tags",
            drift,
            _dom_tags(parts.all("tags__item", tag="a"), page_url),
            lambda: [Tag(t) for t in md.all("article:tag")],
            lambda: [Tag(t) for t in jsonld_keywords(ld)],
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


def _raw_date(which: str, md: Metadata, parts: _Parts, drift: list[str]) -> str | None:
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


def _label(parts: _Parts) -> tuple[str | None, str | None]:
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


def _body_class_section(root: HtmlElement) -> str | None:
    body = root.find("body")
    classes = (body.get("class") or "") if body is not None else ""
    for cls in classes.split():
        if cls.startswith("section-") and len(cls) > 8:
            return cls[8:].replace("-", " ").title()
    return None


def _dom_authors(elements: list[HtmlElement], base: str) -> list[Author]:
    authors: dict[str, Author] = {}
    for el in elements:
        name = inline_text(el)
        if not name or name in authors:
            continue
        link = NEAREST_LINK(el)
        authors[name] = Author(name, _abs(link[0], base) if link else None)
    return list(authors.values())


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
            tags[name] = Tag(name, _abs(el.get("href"), base))
    return list(tags.values())


def _abs(url: str | None, base: str) -> str | None:
    if not url or not url.strip():
        return None
    return normalize_url(url, base=base)


def _slug(url: str, post_id: str | None) -> str | None:
    path = urlsplit(url).path.rstrip("/")
    slug = path.rsplit("/", 1)[-1] if path else ""
    if post_id and slug.endswith(f"-{post_id}"):
        slug = slug[: -len(post_id) - 1]
    return slug or None


def _image_url(el: HtmlElement, base: str) -> str | None:
    """The real URL of a lazily loaded RebelMouse image (``src`` may be a placeholder)."""
    for attr in (
        "data-runner-img-hd",
        "data-runner-src",
        "data-runner-img-md",
        "data-runner-img-sd",
        "data-src",
        "src",
    ):
        value = (el.get(attr) or "").strip()
        if value and not _PLACEHOLDER.search(value):
            return urljoin(base, value)
    img = el.find(".//img") if el.tag != "img" else None
    return _image_url(img, base) if img is not None else None


def _lead_image(parts: _Parts, md: Metadata, base: str, drift: list[str]) -> Image | None:
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
        lambda: _image_url(dom, base) if dom is not None else None,
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
        url=urljoin(base, url),
        caption=inline_text(caption) if caption is not None else None,
        credit=inline_text(credit) if credit is not None else None,
        alt=alt,
    )


def _body(body_el: HtmlElement, base: str) -> tuple[str, str, list[Image]]:
    """(sanitised HTML, text, inline images) of the article body; the page's tree is untouched."""
    body = copy.deepcopy(body_el)
    body.tail = None
    remove(_chrome(body))

    images: list[Image] = []
    holders: list[HtmlElement] = []
    for img in INLINE_IMAGES(body):
        src = _image_url(img, base)
        if _is_pixel(img):
            # Spacers and tracking pixels are not pictures of anything.
            remove([img])
            continue
        if not src:
            continue
        img.set("src", src)
        holder = _first([img], IMAGE_HOLDER)
        caption = credit = None
        if holder is not None:
            cap, cred = _first([holder], IMAGE_CAPTION), _first([holder], IMAGE_CREDIT)
            caption = inline_text(cap) if cap is not None else None
            credit = inline_text(cred) if cred is not None else None
            holders.append(holder)
        images.append(
            Image(
                url=src,
                caption=caption or None,
                credit=credit or None,
                alt=normalize_space(img.get("alt")) or None,
            )
        )
    embeds = _embeds_as_links(body)
    _absolute_links(body, base)
    # The wrapper div is not an allowed tag: nh3 keeps its content, drops the div itself.
    html = sanitize_html(etree.tostring(body, method="html", encoding="unicode"))

    # Captions and credits belong to their images, not to the text; nor do embeds' links.
    remove(holders)
    remove(embeds)
    text = block_text(body)
    return html, text, images


def _embeds_as_links(body: HtmlElement) -> list[HtmlElement]:
    """Each embedded frame (a video, a post) as a link to what it showed: the stored HTML keeps
    no iframe, but a reader should still see that something was there and where it lives. The
    links are not part of the body text (and so of the content hash)."""
    links = []
    for frame in list(body.iter("iframe")):
        src = (frame.get("src") or frame.get("data-src") or "").strip()
        if not src.startswith(("http://", "https://", "//")):
            continue
        link = body.makeelement("a", {"href": src})
        link.text = f"Embedded media: {urlsplit(src if '://' in src else 'https:' + src).netloc}"
        link.tail = frame.tail
        frame.getparent().replace(frame, link)
        links.append(link)
    return links


def _chrome(body: HtmlElement) -> list[HtmlElement]:
    """Ads, share panels, scripts and toggles inside a body: never article content."""
    return [
        el
        for el in body.iter(etree.Element)
        if el.tag in _CHROME_TAGS
        or not _CHROME_CLASSES.isdisjoint((el.get("class") or "").split())
        or (el.get("id") or "").startswith("div-gpt-ad")
    ]


def _absolute_links(body: HtmlElement, base: str) -> None:
    for el in LINKS(body):
        attr = "href" if el.tag == "a" else "src"
        value = el.get(attr, "").strip()
        if value and not _ABSOLUTE.match(value):
            el.set(attr, urljoin(base, value))


_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


# -- the keep-reading feed ---------------------------------------------------------------------


def _teasers(blocks: list[HtmlElement], page_url: str, drift: list[str]) -> list[Teaser]:
    teasers: list[Teaser] = []
    for block in blocks:
        for post in POSTS(block):
            teaser = _teaser(post, len(teasers), page_url, drift)
            if teaser is not None:
                teasers.append(teaser)
    return teasers


def _teaser(post: HtmlElement, position: int, base: str, drift: list[str]) -> Teaser | None:
    parts = _Parts([post])
    data = parts.data()
    head = parts.first("widget__headline-text")
    title = inline_text(head) if head is not None else ""
    href = head.get("href") if head is not None else None
    if head is not None and not href:
        link = NEAREST_LINK(head)
        href = link[0] if link else None
    if not title and data.get("data-headline"):
        title = normalize_space(data["data-headline"])
        _note(drift, "teaser_headline")
    if not href and data.get("data-post-url"):
        href = data["data-post-url"]
        _note(drift, "teaser_url")
    if not title or not href:
        return None

    category = CATEGORY(post)
    section = normalize_space(category[0]) if category else ""
    if not section:
        label = _label(parts)[1]
        if label:
            section = label
            _note(drift, "teaser_section")

    authors = _dom_authors(parts.all("social-author__name"), base)
    if not authors and data.get("data-authors"):
        authors = [Author(n.strip()) for n in data["data-authors"].split(",") if n.strip()]
        _note(drift, "teaser_authors")

    date_el = parts.first("social-date__text")
    date_raw = inline_text(date_el) if date_el is not None else None

    brief = parts.all("widget__brief")
    if brief:
        excerpt = "\n\n".join(t for t in (block_text(b) for b in brief) if t)
    else:
        body = parts.first("body-description")
        excerpt = ""
        if body is not None:
            body = copy.deepcopy(body)
            body.tail = None
            remove(TEASER_HIDDEN(body))
            remove(TEASER_TOGGLE(body))
            excerpt = block_text(body)
            if excerpt:
                _note(drift, "teaser_excerpt")

    hidden = parts.all("js-appear-on-expand")
    has_more = any(normalize_space("".join(h.itertext())) for h in hidden)

    return Teaser(
        position=position,
        url=normalize_url(href, base=base),
        title=title,
        post_id=post.get("elid") or _class_post_id(post) or data.get("data-elid") or None,
        section=section or None,
        authors=authors,
        # The hidden post data carries the exact time; the visible date only the day.
        published_at=_timestamp(data.get("data-created-ts")) or parse_date(date_raw),
        published_at_raw=date_raw or data.get("data-created-ts") or None,
        image=_teaser_image(parts, base),
        excerpt=excerpt,
        has_more=has_more,
    )


def _is_pixel(img: HtmlElement) -> bool:
    return any((img.get(dim) or "").strip() in ("0", "1", "2") for dim in ("width", "height"))


def _timestamp(value: str | None) -> str | None:
    """ISO UTC text for a Unix timestamp attribute (``data-created-ts``)."""
    if not value or not value.strip().isdigit():
        return None
    return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _teaser_image(parts: _Parts, base: str) -> Image | None:
    for el in parts.all("widget__image"):
        url = _image_url(el, base)
        if url:
            cap = parts.first_of(("media-caption", None), ("photo-caption", None))
            cred = parts.first_of(("media-photo-credit", None), ("photo-credit", None))
            return Image(
                url=url,
                caption=inline_text(cap) if cap is not None else None,
                credit=inline_text(cred) if cred is not None else None,
                alt=normalize_space(el.get("aria-label") or el.get("alt")) or None,
            )
    return None


def _note(drift: list[str], name: str) -> None:
    if name not in drift:
        drift.append(name)


# -- loading more of the feed (REBELMOUSE.md §4) ---------------------------------------------

LOAD_MORE_PATH = "/res/load_more_posts/data.js"
# The block's "load more" button names the next page; absent, the HTML is page 1.
LOAD_MORE_BUTTON = X(f".//*[{_cls('js-load-more')} or {_cls('rm-load-more')}][@data-page]")
# Listing pagination (/tag/<slug>/page/<n>/): the head's rel=next, else a rel=next link.
NEXT_PAGE = X("//link[@rel='next']/@href | //a[@rel='next']/@href")
BOOTSTRAP_DATA = re.compile(r"REBELMOUSE_BOOTSTRAP_DATA\s*=\s*(\{.*?\})\s*;\s*(?:$|\n|<)", re.S)
# Keys of the load-more JSON, first that is present wins.
LM_HAS_MORE = "has_more"
LM_POSTS = "posts_by_source"
LM_POST_SOURCE = "current_page"
LM_ID = ("id", "post_id", "elid")
LM_URL = ("raw_share_url", "post_url", "source_url", "url")
LM_HEADLINE = ("headline", "title")
LM_CREATED = ("created_ts", "formated_full_created_ts", "created")
LM_SECTION = ("section", "primary_section", "category")
LM_AUTHORS = ("authors", "author", "creator")
LM_IMAGE = ("image", "image_url", "media_url")
LM_HTML = ("html", "rendered", "body_html")
LM_BRIEF = ("teaser", "brief", "description", "body")


@dataclass
class FeedBlock:
    """What a page says about its keep-reading feed: enough to ask for the next page of it."""

    page_key: str  # the URL its teasers are stored under (the article's canonical URL)
    node_id: str | None = None
    has_more: bool = False
    next_page: int = 2  # the load-more page number after the HTML
    shown_post_ids: list[str] = field(default_factory=list)  # the page's own post first
    post_urls: list[str] = field(default_factory=list)  # teaser targets as written, feed order
    teaser_count: int = 0
    bootstrap: dict[str, Any] = field(default_factory=dict)
    next_listing: str | None = None  # rel=next of a paginated listing (absolute, as written)

    def load_more_url(self, site_url: str, page: int, exclude: Iterable[str] = ()) -> str | None:
        """The load-more request for ``page`` (None when the page lacks the parameters)."""
        site_id = self.bootstrap.get("site_id") or (self.bootstrap.get("site") or {}).get("id")
        if not self.node_id or not site_id:
            return None
        ids = list(dict.fromkeys([*self.shown_post_ids, *exclude]))
        query = {
            "site_id": site_id,
            "node_id": self.node_id,
            "resource_id": self.bootstrap.get("resourceId") or "",
            "path_params": json.dumps(
                self.bootstrap.get("pathParams") or {}, separators=(",", ":")
            ),
            "rm_page_path": self.bootstrap.get("path") or urlsplit(self.page_key).path,
            "formats": "html",
            "rm_lazy_load": 1,
            "exclude_post_ids": ",".join(ids),
            "pn": page,
        }
        return f"{site_url.rstrip('/')}{LOAD_MORE_PATH}?{urlencode(query)}"


def feed_block(doc: Any, url: str) -> FeedBlock:
    """The keep-reading feed of a page (its ``current_page`` block) and the page's pagination.

    Reads the parsed tree Scrapy already holds for the spider; parses nothing again.
    """
    root = _root(doc)
    blocks = [b for b in BLOCKS(root) if b.get("data-source") == "current_page" and not IN_BLOCK(b)]
    own = _bootstrap_post_id(root)
    post_blocks = [
        b for b in BLOCKS(root) if b.get("data-source") == "current_post" and not IN_BLOCK(b)
    ]
    for block in post_blocks:
        for post in POSTS(block):
            own = post.get("elid") or _class_post_id(post) or own
            break
    md = read_metadata(root)
    # Teasers are stored under the article's URL, or the page's own for a listing.
    key = _canonical_url(md, url, []) if (post_blocks or own) else normalize_url(url)
    info = FeedBlock(page_key=key, bootstrap=_bootstrap(root))
    if own:
        info.shown_post_ids.append(own)
    for block in blocks:
        info.node_id = info.node_id or block.get("data-attr-node_id")
        info.has_more = info.has_more or block.get("data-has-more") == "true"
        for button in LOAD_MORE_BUTTON(block):
            page = button.get("data-page", "")
            if page.isdigit():
                info.next_page = int(page)
        for post in POSTS(block):
            post_id = post.get("elid") or _class_post_id(post)
            href = post.get("data-post-url") or _first([post], NEAREST_HEADLINE_LINK)
            if post_id:
                info.shown_post_ids.append(post_id)
            if href:
                info.post_urls.append(urljoin(url, href.strip()))
                info.teaser_count += 1
    nxt = NEXT_PAGE(root)
    if nxt and nxt[0].strip():
        # As the page writes it: /page/2/ and /page/2 may not be the same resource.
        info.next_listing = urljoin(url, nxt[0].strip())
    return info


NEAREST_HEADLINE_LINK = X(f".//*[{_cls('widget__headline-text')}]/@href")


def _bootstrap(root: HtmlElement) -> dict[str, Any]:
    for script in BOOTSTRAP(root):
        m = BOOTSTRAP_DATA.search(script)
        if not m:
            continue
        try:
            data = json.loads(m.group(1))
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return {}


@dataclass
class LoadMorePage:
    """One answer of the load-more endpoint."""

    has_more: bool
    teasers: list[Teaser]
    post_ids: list[str]
    skipped: int = 0  # posts without an id or URL


def parse_load_more(data: bytes | str, page_url: str, start: int) -> LoadMorePage:
    """Teasers from a load-more JSON answer, positions counting on from ``start``.

    Tolerant: unknown keys are ignored, a post without an id or URL is skipped and counted, a
    post with rendered ``html`` is read like a teaser in the page. Raises ValueError when the
    answer is not the JSON object the endpoint sends.
    """
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("load-more answer is not a JSON object")
    sources = doc.get(LM_POSTS) or {}
    if isinstance(sources, list):  # a bare list of posts
        posts: list[Any] = sources
    elif isinstance(sources, dict):
        posts = sources.get(LM_POST_SOURCE)
        if posts is None:
            posts = [p for v in sources.values() if isinstance(v, list) for p in v]
    else:
        posts = []
    page = LoadMorePage(has_more=bool(doc.get(LM_HAS_MORE)), teasers=[], post_ids=[])
    drift: list[str] = []
    for post in posts:
        teaser = _json_teaser(post, start + len(page.teasers), page_url, drift)
        if teaser is None:
            page.skipped += 1
            continue
        page.teasers.append(teaser)
        if teaser.post_id:
            page.post_ids.append(teaser.post_id)
    return page


def keep_feed_teasers(
    teasers: Iterable[Teaser], shown: Collection[str], site_url: str
) -> list[Teaser]:
    """The teasers of a load-more answer that are stored under the page: those on the site that
    the walk has not shown already (``shown``: normalised URLs; a feed that ignores
    ``exclude_post_ids`` repeats posts). The spiders and ``rsarchive reparse`` both call it, so a
    replay keeps exactly what the crawl kept.
    """
    return [t for t in teasers if t.url not in shown and same_site(t.url, site_url)]


def _key(post: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = post.get(key)
        if value not in (None, "", [], {}):
            return value
    return None


def _name(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("title") or value.get("name") or value.get("display_name")
    return normalize_space(str(value)) if value else ""


def _json_teaser(post: Any, position: int, base: str, drift: list[str]) -> Teaser | None:
    if not isinstance(post, dict):
        return None
    post_id = _key(post, LM_ID)
    url = _key(post, LM_URL)
    if post_id is None or not isinstance(url, str):
        return None
    html = _key(post, LM_HTML)
    if isinstance(html, str) and html.strip():
        from lxml.html import fragment_fromstring

        try:
            holder = fragment_fromstring(html, create_parent="div")
        except etree.ParserError:
            holder = None
        rendered = POSTS(holder) if holder is not None else []
        if rendered:
            teaser = _teaser(rendered[0], position, base, drift)
            if teaser is not None:
                teaser.post_id = teaser.post_id or str(post_id)
                return teaser
    title = _key(post, LM_HEADLINE)
    if not isinstance(title, str) or not title.strip():
        return None
    created = _key(post, LM_CREATED)
    if isinstance(created, (int, float)) or (isinstance(created, str) and created.isdigit()):
        published = _timestamp(str(int(float(created))))
    else:
        published = parse_date(created) if isinstance(created, str) else None
    authors = _key(post, LM_AUTHORS) or []
    if not isinstance(authors, list):
        authors = [authors]
    image = _key(post, LM_IMAGE)
    if isinstance(image, dict):
        image = image.get("url") or image.get("src")
    brief = _key(post, LM_BRIEF)
    excerpt = ""
    if isinstance(brief, str) and brief.strip():
        from lxml.html import fragment_fromstring

        excerpt = block_text(fragment_fromstring(brief, create_parent="div"))
    return Teaser(
        position=position,
        url=normalize_url(url, base=base),
        title=normalize_space(title),
        post_id=str(post_id),
        section=_name(_key(post, LM_SECTION)) or None,
        authors=[
            Author(_name(a), _abs(a.get("url"), base) if isinstance(a, dict) else None)
            for a in authors
            if _name(a)
        ],
        published_at=published,
        published_at_raw=str(created) if created is not None else None,
        image=Image(url=urljoin(base, image)) if isinstance(image, str) and image else None,
        excerpt=excerpt,
    )
