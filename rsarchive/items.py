"""Typed items: what a spider yields (Page) and what the split step makes of it (Article, Teaser).

Field names follow the archive schema (docs/architecture.md §4) so a row and an item read alike.
Times are ISO 8601 UTC text (``2021-05-19T14:03:00Z``); the string found on the page is kept
beside it (``*_raw``). Items hold plain data only: no Scrapy objects, so ``extract/`` and
``archive/`` can use them without Scrapy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Author:
    name: str
    url: str | None = None


@dataclass
class Tag:
    name: str
    url: str | None = None


@dataclass
class Image:
    url: str
    caption: str | None = None
    credit: str | None = None
    alt: str | None = None


@dataclass
class Article:
    """The page's own post: one per page at most."""

    url: str  # normalised canonical URL: the article's identity in the archive
    title: str
    post_id: str | None = None
    slug: str | None = None
    subtitle: str | None = None
    type: str | None = None  # "Analysis", "Reporting", ... (the label's part before "|")
    section: str | None = None
    authors: list[Author] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    published_at: str | None = None
    published_at_raw: str | None = None
    modified_at: str | None = None
    modified_at_raw: str | None = None
    image: Image | None = None  # lead image
    images: list[Image] = field(default_factory=list)  # inline images, in body order
    body_text: str = ""
    body_html: str = ""  # sanitised
    word_count: int = 0
    language: str | None = None
    # Which extractor read it: "rebelmouse" (the page parser) or "generic" (the last resort for
    # a page with no RebelMouse post block).
    extractor: str = "rebelmouse"
    # The canonical URL the page declared, when it is not the page's own URL (kept for review).
    declared_canonical: str | None = None


@dataclass
class Teaser:
    """One post in the page's keep-reading feed (a zyte ``ArticleFromList``)."""

    position: int  # 0-based, feed order
    url: str  # normalised URL of the teased post
    title: str
    post_id: str | None = None
    section: str | None = None
    authors: list[Author] = field(default_factory=list)
    published_at: str | None = None
    published_at_raw: str | None = None
    image: Image | None = None
    excerpt: str = ""  # the visible text only
    has_more: bool = False  # hidden remaining text (the "keep reading" part) existed


@dataclass
class ParsedPage:
    """What the RebelMouse parser makes of one HTML page."""

    article: Article | None = None
    teasers: list[Teaser] = field(default_factory=list)
    # Fields for which a primary selector missed and a fallback was used ("layout drift").
    drift: list[str] = field(default_factory=list)
    # Page defects that are not layout drift ("jsonld_invalid", "canonical_offsite").
    warnings: list[str] = field(default_factory=list)


class Unparsed:
    """``Page.selector`` of an HTML page left unparsed by the spider: the split step builds its
    tree where it splits it (an extraction process; see ``pipelines/split.py``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNPARSED"


UNPARSED = Unparsed()


@dataclass
class Page:
    """One fetched page, the unit that is archived (and can be re-split later).

    ``body``, ``headers`` and ``selector`` travel to the pipeline but are not exported by
    Scrapy's feed exports (see ``FEED_EXPORT_FIELDS`` in settings).
    """

    url: str  # final URL, after redirects
    status: int
    fetched_at: str
    requested_url: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    # The tree Scrapy already parsed for the spider (``response.selector``): the split step
    # reuses it instead of parsing the bytes again. A parsel Selector, ``UNPARSED`` (HTML the
    # split step parses), or None (not HTML).
    selector: Any = field(default=None, repr=False, compare=False)
    article: Article | None = None
    teasers: list[Teaser] = field(default_factory=list)
    # The parser that split this page (``rsarchive.extract.PARSER_VERSION``), set by the split step.
    parser_version: str | None = None
    # The RSS/sitemap date that sent the spider here (kept in the fetch state).
    feed_date: str | None = None


@dataclass
class FeedPage:
    """A load-more answer: more of the keep-reading feed of ``page_url`` (its teasers), and the
    answer itself, archived as a capture like a page."""

    url: str  # the load-more request
    page_url: str  # the page whose feed it continues (the key its teasers are stored under)
    fetched_at: str
    teasers: list[Teaser] = field(default_factory=list)
    # The answer as received: kept in ``captures`` so that ``rsarchive reparse`` replays it.
    status: int = 200
    requested_url: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    # What a replay needs to put the teasers where the crawl put them: the position of the
    # answer's first post, and its posts the walk had shown already (left out, normalised URLs).
    position: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass
class FetchOutcome:
    """How one request ended, for the archive's fetch state (``archive/fetchstate.py``).

    ``status`` is None when no HTTP answer came (timeout, connection lost, truncated body).
    """

    url: str  # as requested
    status: int | None
    error: str | None = None  # None: a success (200 stored, 304 not modified, 404/410 gone)
    etag: str | None = None
    last_modified: str | None = None
    feed_date: str | None = None  # the RSS/sitemap date that sent us there
