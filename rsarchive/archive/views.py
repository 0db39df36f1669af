"""Views for people who query the archive with SQL by hand (and for Datasette's pages).

Read-only conveniences over the tables of docs/architecture.md §4: nothing writes to them, and
dropping them loses no data. ``teasers`` is one of them since issue 14 (the sightings and the
contents they showed, stored apart), read under the column names it had as a table.
``create_schema`` creates them; ``DROP_VIEWS`` removes them (a migration that changes a view
drops and re-creates it: ``CREATE VIEW IF NOT EXISTS`` keeps an old definition).

The SQL is plain and portable except for two aggregates, spelt per dialect: the ordered
", "-joined list and the JSON array of author and tag names (SQLite ``group_concat`` over an
ordered subquery and ``json_group_array``; PostgreSQL ``string_agg``/``json_agg`` with
``ORDER BY``). Months and years are ``substr`` of the ISO 8601 text times, which both engines
have.
"""

from __future__ import annotations

#: The views, in creation order (a later view may read an earlier one).
VIEW_NAMES = (
    "teasers",
    "article_list",
    "teaser_list",
    "author_articles",
    "tag_articles",
    "author_summary",
    "articles_per_month",
)

# The link rows of one article, as (value, order) for the list aggregates below.
_AUTHORS_OF = (
    "au.name",
    "aa.position",
    "article_authors aa JOIN authors au ON au.id = aa.author_id WHERE aa.article_id = a.id",
)
_TAGS_OF = (
    "tg.name",
    "at.position",
    "article_tags at JOIN tags tg ON tg.id = at.tag_id WHERE at.article_id = a.id",
)


def _joined(dialect: str, value: str, order: str, source: str) -> str:
    """The values ``", "``-joined in ``order``; NULL when there are none."""
    if dialect == "postgresql":
        return f"(SELECT string_agg({value}, ', ' ORDER BY {order}) FROM {source})"
    # SQLite before 3.44 has no ORDER BY inside group_concat: it aggregates rows in the order
    # the subquery yields them.
    return (
        f"(SELECT group_concat(v, ', ') FROM (SELECT {value} AS v FROM {source} ORDER BY {order}))"
    )


def _json_array(dialect: str, value: str, order: str, source: str) -> str:
    """The values as a JSON array in ``order``; ``[]`` when there are none."""
    if dialect == "postgresql":
        return f"(SELECT COALESCE(json_agg({value} ORDER BY {order}), '[]'::json) FROM {source})"
    return f"(SELECT json_group_array(v) FROM (SELECT {value} AS v FROM {source} ORDER BY {order}))"


def _definitions(dialect: str) -> dict[str, str]:
    authors = _joined(dialect, *_AUTHORS_OF)
    authors_json = _json_array(dialect, *_AUTHORS_OF)
    tags = _joined(dialect, *_TAGS_OF)
    tags_json = _json_array(dialect, *_TAGS_OF)
    return {
        # Issue 14: the table ``teasers`` was, under its column names: each sighting with the
        # content it showed last (stored once in teaser_contents, however often it was seen).
        "teasers": """
SELECT
  s.id,
  s.page_url,
  s.page_article_id,
  s.position,
  s.url,
  s.article_id,
  c.post_id,
  c.title,
  c.section,
  c.authors,
  c.published_at,
  c.published_at_raw,
  c.excerpt,
  c.has_more,
  c.image_url,
  c.image_caption,
  s.first_seen_at,
  s.last_seen_at
FROM teaser_sightings s
JOIN teaser_contents c ON c.id = s.content_id""",
        # One row per article, with everything a list of articles shows.
        "article_list": f"""
SELECT
  a.id,
  a.url,
  a.title,
  a.subtitle,
  a.type,
  a.section,
  {authors} AS authors,
  {authors_json} AS authors_json,
  {tags} AS tags,
  {tags_json} AS tags_json,
  a.published_at,
  substr(a.published_at, 1, 7) AS published_month,
  a.modified_at,
  a.word_count,
  (SELECT count(*) FROM teasers t WHERE t.page_article_id = a.id) AS teaser_count,
  (SELECT count(*) FROM teasers t WHERE t.article_id = a.id) AS teased_count,
  (SELECT count(*) FROM revisions r WHERE r.article_id = a.id) AS revision_count,
  a.first_seen_at,
  a.removed_at
FROM articles a""",
        # One row per keep-reading teaser: the page it was seen on and the article it offers.
        "teaser_list": """
SELECT
  t.id,
  t.page_url,
  t.page_article_id,
  p.title AS page_title,
  t.position,
  t.url,
  t.article_id,
  t.title,
  a.title AS article_title,
  CASE WHEN t.article_id IS NULL THEN 0 ELSE 1 END AS archived,
  t.section,
  t.authors,
  t.published_at,
  t.excerpt,
  t.first_seen_at,
  t.last_seen_at
FROM teasers t
LEFT JOIN articles p ON p.id = t.page_article_id
LEFT JOIN articles a ON a.id = t.article_id""",
        # One row per (author, article): an author's bibliography.
        "author_articles": """
SELECT
  au.id AS author_id,
  au.name AS author,
  au.url AS author_url,
  aa.position,
  a.id AS article_id,
  a.title,
  a.url,
  a.type,
  a.section,
  a.published_at,
  a.word_count,
  a.removed_at
FROM article_authors aa
JOIN authors au ON au.id = aa.author_id
JOIN articles a ON a.id = aa.article_id""",
        # One row per (tag, article).
        "tag_articles": """
SELECT
  tg.id AS tag_id,
  tg.name AS tag,
  tg.url AS tag_url,
  a.id AS article_id,
  a.title,
  a.url,
  a.section,
  a.published_at
FROM article_tags at
JOIN tags tg ON tg.id = at.tag_id
JOIN articles a ON a.id = at.article_id""",
        # One row per author: how much and when they wrote.
        "author_summary": """
SELECT
  au.id AS author_id,
  au.name AS author,
  au.url AS author_url,
  count(a.id) AS articles,
  sum(a.word_count) AS words,
  min(a.published_at) AS first_published_at,
  max(a.published_at) AS last_published_at
FROM authors au
JOIN article_authors aa ON aa.author_id = au.id
JOIN articles a ON a.id = aa.article_id
GROUP BY au.id, au.name, au.url""",
        # One row per (month, section, type) with articles.
        "articles_per_month": """
SELECT
  substr(published_at, 1, 7) AS month,
  section,
  type,
  count(*) AS articles,
  sum(word_count) AS words
FROM articles
WHERE published_at IS NOT NULL
GROUP BY substr(published_at, 1, 7), section, type""",
    }


def create_view_ddl(dialect: str = "sqlite") -> tuple[str, ...]:
    """``CREATE VIEW`` statements for ``dialect`` (``sqlite`` or ``postgresql``), in order."""
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"no view definitions for the {dialect} dialect")
    # PostgreSQL has no CREATE VIEW IF NOT EXISTS; OR REPLACE is its idempotent form.
    create = "CREATE OR REPLACE VIEW" if dialect == "postgresql" else "CREATE VIEW IF NOT EXISTS"
    definitions = _definitions(dialect)
    return tuple(f"{create} {name} AS{definitions[name]}" for name in VIEW_NAMES)


#: The SQLite DDL (the embedded default).
VIEW_DDL = create_view_ddl("sqlite")

#: Drop every view, dependants first; valid on SQLite and PostgreSQL.
DROP_VIEWS = tuple(f"DROP VIEW IF EXISTS {name}" for name in reversed(VIEW_NAMES))
