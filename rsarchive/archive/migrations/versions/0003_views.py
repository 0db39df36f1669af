"""Issue 4, plain SQL: views for hand-written queries and Datasette (article_list, ...).

A frozen copy of the view SQL as it was when this step was written (``archive/views.py`` may
change later; a later step then drops and re-creates the views it changes).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

# ruff: noqa: E501 (the view SQL is kept verbatim, as SQLite stores it)

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VIEW_NAMES = (
    "article_list",
    "teaser_list",
    "author_articles",
    "tag_articles",
    "author_summary",
    "articles_per_month",
)

SQLITE_VIEWS = (
    """CREATE VIEW IF NOT EXISTS article_list AS
SELECT
  a.id,
  a.url,
  a.title,
  a.subtitle,
  a.type,
  a.section,
  (SELECT group_concat(v, ', ') FROM (SELECT au.name AS v FROM article_authors aa JOIN authors au ON au.id = aa.author_id WHERE aa.article_id = a.id ORDER BY aa.position)) AS authors,
  (SELECT json_group_array(v) FROM (SELECT au.name AS v FROM article_authors aa JOIN authors au ON au.id = aa.author_id WHERE aa.article_id = a.id ORDER BY aa.position)) AS authors_json,
  (SELECT group_concat(v, ', ') FROM (SELECT tg.name AS v FROM article_tags at JOIN tags tg ON tg.id = at.tag_id WHERE at.article_id = a.id ORDER BY at.position)) AS tags,
  (SELECT json_group_array(v) FROM (SELECT tg.name AS v FROM article_tags at JOIN tags tg ON tg.id = at.tag_id WHERE at.article_id = a.id ORDER BY at.position)) AS tags_json,
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
    """CREATE VIEW IF NOT EXISTS teaser_list AS
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
    """CREATE VIEW IF NOT EXISTS author_articles AS
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
    """CREATE VIEW IF NOT EXISTS tag_articles AS
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
    """CREATE VIEW IF NOT EXISTS author_summary AS
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
    """CREATE VIEW IF NOT EXISTS articles_per_month AS
SELECT
  substr(published_at, 1, 7) AS month,
  section,
  type,
  count(*) AS articles,
  sum(word_count) AS words
FROM articles
WHERE published_at IS NOT NULL
GROUP BY substr(published_at, 1, 7), section, type""",
)

POSTGRESQL_VIEWS = (
    """CREATE OR REPLACE VIEW article_list AS
SELECT
  a.id,
  a.url,
  a.title,
  a.subtitle,
  a.type,
  a.section,
  (SELECT string_agg(au.name, ', ' ORDER BY aa.position) FROM article_authors aa JOIN authors au ON au.id = aa.author_id WHERE aa.article_id = a.id) AS authors,
  (SELECT COALESCE(json_agg(au.name ORDER BY aa.position), '[]'::json) FROM article_authors aa JOIN authors au ON au.id = aa.author_id WHERE aa.article_id = a.id) AS authors_json,
  (SELECT string_agg(tg.name, ', ' ORDER BY at.position) FROM article_tags at JOIN tags tg ON tg.id = at.tag_id WHERE at.article_id = a.id) AS tags,
  (SELECT COALESCE(json_agg(tg.name ORDER BY at.position), '[]'::json) FROM article_tags at JOIN tags tg ON tg.id = at.tag_id WHERE at.article_id = a.id) AS tags_json,
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
    """CREATE OR REPLACE VIEW teaser_list AS
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
    """CREATE OR REPLACE VIEW author_articles AS
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
    """CREATE OR REPLACE VIEW tag_articles AS
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
    """CREATE OR REPLACE VIEW author_summary AS
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
    """CREATE OR REPLACE VIEW articles_per_month AS
SELECT
  substr(published_at, 1, 7) AS month,
  section,
  type,
  count(*) AS articles,
  sum(word_count) AS words
FROM articles
WHERE published_at IS NOT NULL
GROUP BY substr(published_at, 1, 7), section, type""",
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for ddl in {"sqlite": SQLITE_VIEWS, "postgresql": POSTGRESQL_VIEWS}.get(dialect, ()):
        op.execute(ddl)


def downgrade() -> None:
    for name in reversed(VIEW_NAMES):
        op.execute(f"DROP VIEW IF EXISTS {name}")
