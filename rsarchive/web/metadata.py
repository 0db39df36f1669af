"""Datasette metadata for an archive: what every table, view and column holds, search, facets,
and the canned queries.

Keep ``TABLES`` in step with ``rsarchive/archive/models.py`` and ``views.py``: a test fails when a
column of the schema has no description here.
"""

from __future__ import annotations

from typing import Any

# -- columns shared by several tables and views ---------------------------------------------

_ARTICLE = {
    "id": "Article id (stable within this archive)",
    "url": "The article's normalised canonical URL (no query string, no trailing slash)",
    "post_id": "RebelMouse post id (the number at the end of many URLs)",
    "slug": "The last path segment of the URL",
    "title": "Headline",
    "subtitle": "Dek: the line under the headline, if any",
    "type": "Kind of piece, from the site's label: Analysis, Opinion, Reporting, ...",
    "section": "The site's section (Europe, Middle East, QiOSK, ...)",
    "published_at": "Publication time, ISO 8601 UTC",
    "published_at_raw": "Publication time exactly as the page gave it",
    "modified_at": "Last modification time the page claims, ISO 8601 UTC",
    "modified_at_raw": "Modification time exactly as the page gave it",
    "image_url": "Lead image URL",
    "image_caption": "Lead image caption",
    "image_credit": "Lead image credit (photographer / agency)",
    "image_alt": "Lead image alt text",
    "body_text": "The article body as plain text, paragraphs separated by blank lines",
    "body_html": "The article body as sanitised HTML (no script, iframe, event handler or "
    "javascript: URL); shown here sanitised once more",
    "word_count": "Words in body_text",
    "language": "Language code of the page (e.g. en)",
    "content_hash": "SHA-256 over the normalised title, subtitle, body and authors: changes when "
    "the content changes",
    "parser_version": "Version of the extractor that last read this article from its page",
    "extractor": "Which extractor read it: rebelmouse (the page parser) or generic (the last "
    "resort for a page without a RebelMouse post block)",
    "declared_canonical": "The canonical URL the page declared when it names another page: the "
    "article is kept under the URL it was fetched from, never in that other page's place",
    "lists_hash": "Digest of the stored author, tag and inline-image lists",
    "first_seen_at": "When the archive first stored this article, ISO 8601 UTC",
    "last_seen_at": "When a crawl last saw this article, ISO 8601 UTC",
    "changed_at": "When the stored content last changed, ISO 8601 UTC",
    "removed_at": "When the page started answering 404/410 (the content is kept); empty while "
    "it is online",
}

_TEASER = {
    "page_url": "URL of the page the teaser was seen on",
    "page_article_id": "The page's own article (articles.id), if the page is an article",
    "position": "Place in the page's keep-reading feed, from 0 (the page_teasers query and "
    "`rsarchive teasers` count from 1)",
    "url": "Normalised URL of the article the teaser points to",
    "article_id": "The target article (articles.id), once it is archived",
    "post_id": "RebelMouse post id of the target",
    "title": "The teaser's headline",
    "section": "Section label on the teaser",
    "authors": "Byline on the teaser as a JSON array of names",
    "published_at": "Publication time on the teaser, ISO 8601 UTC",
    "published_at_raw": "Publication time exactly as the teaser gave it",
    "excerpt": "The teaser's visible text plus its 'keep reading' remainder",
    "has_more": "1 if the teaser had a 'keep reading' toggle",
    "image_url": "Teaser image URL",
    "image_caption": "Teaser image caption",
    "first_seen_at": "When this teaser was first seen on this page, ISO 8601 UTC",
    "last_seen_at": "When a crawl last saw this teaser on this page, ISO 8601 UTC",
}


# The columns of a teaser sighting that are not its content.
_SIGHTING_ONLY = (
    "page_url",
    "page_article_id",
    "position",
    "url",
    "article_id",
    "first_seen_at",
    "last_seen_at",
)


def _pick(source: dict[str, str], *names: str, **extra: str) -> dict[str, str]:
    return {**{n: source[n] for n in names}, **extra}


#: table or view -> (description, {column: description}), in the order Datasette lists them.
TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "articles": (
        "One row per article (by normalised canonical URL): the latest observed version of its "
        "content. Search box: full text of title, subtitle and body (articles_fts).",
        dict(_ARTICLE),
    ),
    "authors": (
        "One row per author name.",
        {
            "id": "Author id",
            "name": "Author name as on the byline",
            "url": "The author's page on the site",
        },
    ),
    "article_authors": (
        "Which authors wrote which article, in byline order.",
        {
            "id": "Link id",
            "article_id": "The article (articles.id)",
            "author_id": "The author (authors.id)",
            "position": "Place on the byline, from 0",
        },
    ),
    "tags": (
        "One row per tag name.",
        {"id": "Tag id", "name": "Tag name", "url": "The tag's page on the site"},
    ),
    "article_tags": (
        "Which tags an article has, in page order.",
        {
            "id": "Link id",
            "article_id": "The article (articles.id)",
            "tag_id": "The tag (tags.id)",
            "position": "Place in the article's tag list, from 0",
        },
    ),
    "article_images": (
        "Inline images of an article's body, in body order.",
        {
            "id": "Image id",
            "article_id": "The article (articles.id)",
            "position": "Place in the body, from 0",
            "url": "Image URL",
            "caption": "Caption",
            "credit": "Credit (photographer / agency)",
            "alt": "Alt text",
        },
    ),
    "teasers": (
        "Keep-reading teasers: one row per (page, target) sighting; re-sightings move "
        "last_seen_at. A view: each sighting (teaser_sightings) with the content it showed last "
        "(teaser_contents, stored once however often it is seen).",
        {"id": "Teaser id", **_TEASER},
    ),
    "teaser_sightings": (
        "Where and when each teaser was seen (one row per page and target); the teasers view "
        "adds what it showed.",
        _pick(
            _TEASER,
            *_SIGHTING_ONLY,
            id="Teaser id (teasers.id)",
            content_id="What it showed when last seen (teaser_contents.id)",
        ),
    ),
    "teaser_contents": (
        "What teasers show (headline, byline, excerpt, image), each distinct content once.",
        _pick(
            _TEASER,
            *(c for c in _TEASER if c not in _SIGHTING_ONLY),
            id="Teaser content id",
            content_hash="SHA-256 of the content columns: the key that stores each content once",
        ),
    ),
    "captures": (
        "Raw HTTP responses kept for re-parsing (pages, and load-more answers of their feeds); an "
        "identical body is stored once per URL.",
        {
            "id": "Capture id",
            "url": "Normalised URL of the page",
            "final_url": "URL after redirects",
            "requested_url": "URL as requested",
            "status": "HTTP status",
            "fetched_at": "When it was fetched, ISO 8601 UTC",
            "content_type": "Content-Type header",
            "headers": "Response headers (JSON object)",
            "sha256": "SHA-256 of the uncompressed body",
            "size": "Uncompressed body size in bytes",
            "compression": "How body is compressed: zstd or zlib",
            "body": "The response body, compressed (with the dictionary of dictionary_id, if any)",
            "run_id": "The crawl run that fetched it (crawl_runs.id)",
            "feed_page_url": "For a load-more answer (JSON): the page whose keep-reading feed it "
            "continues, the page_url of its teasers; empty for a page",
            "feed_position": "For a load-more answer: the teaser position of its first post",
            "feed_repeats": "For a load-more answer: its posts the page or an earlier answer had "
            "shown already, left out (JSON list of URLs); empty when none",
            "dictionary_id": "The zstd dictionary body was compressed with "
            "(capture_dictionaries.id); empty: none",
        },
    ),
    "capture_dictionaries": (
        "zstd dictionaries trained on the archive's own pages, one row per version: captures "
        "compressed with one take a fraction of their size alone.",
        {
            "id": "Dictionary id (captures.dictionary_id)",
            "created_at": "When it was trained, ISO 8601 UTC",
            "samples": "How many stored pages it was trained on",
            "last_capture_id": "The newest capture it was trained on (captures.id)",
            "zstd_id": "The id zstd writes into each frame compressed with it",
            "dictionary": "The dictionary itself (binary)",
        },
    ),
    "revisions": (
        "Each observed version of an article's content (the first version too).",
        {
            "id": "Revision id",
            "article_id": "The article (articles.id)",
            "captured_at": "When this version was seen, ISO 8601 UTC",
            "content_hash": _ARTICLE["content_hash"],
            "title": "Headline of this version",
            "subtitle": "Dek of this version",
            "body_text": "Body of this version as plain text; empty for the article's current "
            "version, whose body is the article's (articles.body_text)",
            "body_html": "Body of this version as sanitised HTML, in archives written before "
            "schema 0007 (revisions keep text only now); shown here sanitised once more",
            "authors": "Byline of this version as a JSON array of names (in older "
            'archives: the names joined with ", ")',
            "capture_id": "The raw response it came from (captures.id)",
            "parser_version": "Version of the extractor that read this version from the page",
        },
    ),
    "crawl_runs": (
        "One row per crawl run.",
        {
            "id": "Run id",
            "spider": "The spider: article, feed, sitemap, wayback (reparse for `rsarchive "
            "reparse`, import for `rsarchive import`)",
            "args": "The spider's arguments (JSON object)",
            "started_at": "Start time, ISO 8601 UTC",
            "finished_at": "End time, ISO 8601 UTC; empty while running",
            "status": "running, finished, interrupted or failed",
            "finish_reason": "Scrapy's close reason (finished, shutdown, database_error, ...)",
            "exit_code": "Exit code of `rsarchive crawl` (0 ok, 1 failures, 3 stopped early, ...)",
            "stats": "Scrapy's final crawl stats (JSON object)",
            "pid": "Process id of the crawler",
        },
    ),
    "fetch_state": (
        "What the next crawl needs to know about each URL it requested: validators for "
        "conditional GETs, the feed/sitemap date seen, and failures still to retry.",
        {
            "id": "Row id",
            "url": "The URL as requested",
            "etag": "ETag of the last answer (sent back as If-None-Match)",
            "last_modified": "Last-Modified of the last answer (sent back as If-Modified-Since)",
            "feed_date": "The RSS or sitemap date that last sent a crawl to this URL",
            "last_status": "HTTP status of the last answer; empty when none came (timeout, ...)",
            "failures": "Consecutive failed fetches; above 0, the next feed/sitemap run retries it",
            "last_error": "Why the last fetch failed; empty after a success",
            "last_attempt_at": "When it was last requested, ISO 8601 UTC",
            "last_success_at": "When it last answered usefully (200, 304, 404/410), ISO 8601 UTC",
        },
    ),
    "alembic_version": (
        "The archive's schema version (Alembic); `rsarchive db upgrade` moves it.",
        {"version_num": "The migration step the schema is at (e.g. 0003)"},
    ),
    "articles_fts": (
        "Full-text index (SQLite FTS5) over the articles' title, subtitle and body; the rowid is "
        "articles.id.",
        {
            "title": "Indexed headline",
            "subtitle": "Indexed dek",
            "body_text": "Indexed body text",
        },
    ),
    # -- the SQL views (rsarchive/archive/views.py) --
    "article_list": (
        "One row per article with its authors, tags and teaser counts: the view to browse. "
        "Search box: full text of title, subtitle and body.",
        {
            **_pick(_ARTICLE, "id", "url", "title", "subtitle", "type", "section"),
            "authors": 'Authors joined with ", ", in byline order',
            "authors_json": "Authors as a JSON array, in byline order (facet by it)",
            "tags": 'Tags joined with ", "',
            "tags_json": "Tags as a JSON array (facet by it)",
            **_pick(_ARTICLE, "published_at"),
            "published_month": "Publication month, YYYY-MM (UTC)",
            **_pick(_ARTICLE, "modified_at", "word_count"),
            "teaser_count": "Keep-reading teasers seen on this article's page",
            "teased_count": "Pages whose keep-reading feed offered this article",
            "revision_count": "Versions of the content seen (1 = never edited)",
            **_pick(_ARTICLE, "first_seen_at", "removed_at"),
        },
    ),
    "teaser_list": (
        "Keep-reading teasers with the title of the page they were seen on and of the target, "
        "if archived.",
        {
            "id": "Teaser id",
            **_pick(_TEASER, "page_url", "page_article_id"),
            "page_title": "Headline of the page's own article",
            **_pick(_TEASER, "position", "url", "article_id", "title"),
            "article_title": "Headline of the target article, if archived",
            "archived": "1 if the target article is in the archive",
            **_pick(
                _TEASER,
                "section",
                "authors",
                "published_at",
                "excerpt",
                "first_seen_at",
                "last_seen_at",
            ),
        },
    ),
    "author_articles": (
        "One row per (author, article): every author's articles.",
        {
            "author_id": "The author (authors.id)",
            "author": "Author name",
            "author_url": "The author's page on the site",
            "position": "Place on the article's byline, from 0",
            "article_id": "The article (articles.id)",
            **_pick(
                _ARTICLE,
                "title",
                "url",
                "type",
                "section",
                "published_at",
                "word_count",
                "removed_at",
            ),
        },
    ),
    "tag_articles": (
        "One row per (tag, article).",
        {
            "tag_id": "The tag (tags.id)",
            "tag": "Tag name",
            "tag_url": "The tag's page on the site",
            "article_id": "The article (articles.id)",
            **_pick(_ARTICLE, "title", "url", "section", "published_at"),
        },
    ),
    "author_summary": (
        "One row per author: articles, words, first and last publication.",
        {
            "author_id": "The author (authors.id)",
            "author": "Author name",
            "author_url": "The author's page on the site",
            "articles": "Articles in the archive with this author on the byline",
            "words": "Sum of their word counts",
            "first_published_at": "Earliest publication time, ISO 8601 UTC",
            "last_published_at": "Latest publication time, ISO 8601 UTC",
        },
    ),
    "articles_per_month": (
        "Articles and words per publication month, section and type.",
        {
            "month": "Publication month, YYYY-MM (UTC)",
            "section": _ARTICLE["section"],
            "type": _ARTICLE["type"],
            "articles": "Articles published",
            "words": "Sum of their word counts",
        },
    ),
}

# snippet() marks matches with <mark>; the plugin renders only those tags (see plugin.py).
SEARCH_SQL = """\
-- rank: the place in the results (1 = best), by bm25 with a title match weighing most
select
  row_number() over (order by hit.score, hit.id) as rank,
  hit.id,
  hit.title,
  hit.url,
  (select group_concat(v, ', ') from (
     select au.name as v from article_authors aa join authors au on au.id = aa.author_id
     where aa.article_id = hit.id order by aa.position)) as authors,
  hit.section,
  hit.type,
  hit.published_at,
  hit.snippet
from (
  select
    a.id, a.title, a.url, a.section, a.type, a.published_at,
    snippet(articles_fts, -1, '<mark>', '</mark>', ' … ', 24) as snippet,
    bm25(articles_fts, 10.0, 5.0, 1.0) as score
  from articles_fts
  join articles a on a.id = articles_fts.rowid
  -- the search rules of `rsarchive search` (plugin.py); an empty q (the page opened without a
  -- search) matches nothing instead of failing
  where articles_fts match rs_fts_query(coalesce(nullif(trim(:q), ''), '""'))
  order by score
  limit 100
) as hit
order by rank"""

AUTHOR_SQL = """\
select
  au.name as author,
  a.id,
  a.title,
  a.url,
  a.section,
  a.type,
  a.published_at,
  a.word_count
from authors au
join article_authors aa on aa.author_id = au.id
join articles a on a.id = aa.article_id
where au.name like '%' || :author || '%'
order by a.published_at desc"""

PAGE_TEASERS_SQL = """\
select
  t.position + 1 as position,
  t.title,
  t.url,
  t.article_id is not null as archived,
  a.title as archived_title,
  t.section,
  t.authors,
  t.published_at,
  t.excerpt,
  t.first_seen_at,
  t.last_seen_at
from teasers t
left join articles a on a.id = t.article_id
where t.page_url in (:page, rtrim(:page, '/'))
order by t.position"""

QUERIES = {
    "search": {
        "title": "Search articles",
        "description": "Full-text search over title, subtitle and body, best matches first "
        '(bm25; a title match weighs most). Words, "a phrase", OR, NOT and prefix* work; a word '
        "with punctuation (U.S.-Iran, Blinken-Lavrov) is searched as the phrase of its parts.",
        "sql": SEARCH_SQL,
        "hide_sql": True,
    },
    "articles_by_author": {
        "title": "An author's articles",
        "description": "Every article with a byline containing the name, newest first.",
        "sql": AUTHOR_SQL,
    },
    "page_teasers": {
        "title": "A page's keep-reading feed",
        "description": "The teasers seen on a page (its URL), in feed order, and which of "
        "their targets are archived.",
        "sql": PAGE_TEASERS_SQL,
    },
}

# Per-table Datasette options beyond the descriptions.
_TABLE_OPTIONS: dict[str, dict[str, Any]] = {
    "articles": {
        "fts_table": "articles_fts",
        "fts_pk": "id",
        "facets": ["section", "type"],
        "sort_desc": "published_at",
        "label_column": "title",
    },
    "article_list": {
        "fts_table": "articles_fts",
        "fts_pk": "id",
        "facets": ["section", "type", {"array": "authors_json"}],
        "sort_desc": "published_at",
    },
    "author_articles": {"facets": ["author", "section"], "sort_desc": "published_at"},
    "teaser_list": {"facets": ["archived", "section"]},
    "authors": {"label_column": "name"},
    "tags": {"label_column": "name"},
    "teasers": {"facets": ["section"]},
    "crawl_runs": {"sort_desc": "started_at", "facets": ["spider", "status"]},
}


def build_metadata(database: str, site_url: str) -> dict[str, Any]:
    """Datasette metadata for an archive served under the database name ``database``."""
    tables = {}
    for name, (description, columns) in TABLES.items():
        tables[name] = {"description": description, "columns": dict(columns)}
        tables[name].update(_TABLE_OPTIONS.get(name, {}))
    return {
        "title": "Responsible Statecraft archive",
        "description": "A faithful copy of Responsible Statecraft kept by rsarchive: one row per "
        "article, its authors and tags, the keep-reading teasers each page offered, and the raw "
        "responses. Times are ISO 8601 UTC. Read-only.",
        "source": "Responsible Statecraft",
        "source_url": site_url,
        "license": "Articles: copyright their authors and Responsible Statecraft; archived for "
        "research and reference",
        "about": "rsarchive",
        "about_url": "https://github.com/rsarchive/rsarchive",
        "databases": {database: {"tables": tables, "queries": QUERIES}},
    }
