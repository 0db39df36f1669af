"""The keep-reading feed beyond the page: its ``current_page`` block, the load-more requests and
their JSON answers (REBELMOUSE.md §4), read into teasers like those in the page."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from lxml import etree
from lxml.html import HtmlElement

from rsarchive.extract.metadata import parse_date, read_metadata
from rsarchive.extract.posts import POSTS, absolute, class_post_id, first_match
from rsarchive.extract.rebelmouse import (
    BLOCKS,
    BOOTSTRAP,
    IN_BLOCK,
    _bootstrap_post_id,
    _canonical_url,
)
from rsarchive.extract.teasers import read_teaser, timestamp
from rsarchive.extract.text import block_text, normalize_space
from rsarchive.extract.tree import page_root
from rsarchive.extract.xpath import X
from rsarchive.extract.xpath import has_class as _cls
from rsarchive.items import Author, Image, Teaser
from rsarchive.urls import normalize_url, same_site

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
    root = page_root(doc)
    blocks = [b for b in BLOCKS(root) if b.get("data-source") == "current_page" and not IN_BLOCK(b)]
    own = _bootstrap_post_id(root)
    post_blocks = [
        b for b in BLOCKS(root) if b.get("data-source") == "current_post" and not IN_BLOCK(b)
    ]
    for block in post_blocks:
        for post in POSTS(block):
            own = post.get("elid") or class_post_id(post) or own
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
            post_id = post.get("elid") or class_post_id(post)
            href = post.get("data-post-url") or first_match([post], NEAREST_HEADLINE_LINK)
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
            teaser = read_teaser(rendered[0], position, base, drift)
            if teaser is not None:
                teaser.post_id = teaser.post_id or str(post_id)
                return teaser
    title = _key(post, LM_HEADLINE)
    if not isinstance(title, str) or not title.strip():
        return None
    created = _key(post, LM_CREATED)
    if isinstance(created, (int, float)) or (isinstance(created, str) and created.isdigit()):
        published = timestamp(str(int(float(created))))
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
            Author(_name(a), absolute(a.get("url"), base) if isinstance(a, dict) else None)
            for a in authors
            if _name(a)
        ],
        published_at=published,
        published_at_raw=str(created) if created is not None else None,
        image=Image(url=urljoin(base, image)) if isinstance(image, str) and image else None,
        excerpt=excerpt,
    )
