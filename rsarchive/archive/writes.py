"""How one page's rows are written: the statements (built once per dialect), the capture, the
article with its revisions and lists, the teasers (sightings and their contents).

``Archive`` (``store.py``) owns the connection and the transaction of each page and calls these in
order; they run inside it, through a runner (``runner.py``), and never commit.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ..items import Article, Author, FeedPage, Page, Tag, Teaser
from . import fetchstate
from . import models as m

# Re-exported: they lived here before codec.py, and other modules import them from here.
from .codec import MissingCodec as MissingCodec
from .codec import compress_body as compress_body
from .codec import decompress_body as decompress_body
from .runner import CoreRunner, SqliteRunner

ArticleStatus = Literal["new", "changed", "updated", "unchanged"]
_Named = TypeVar("_Named", Author, Tag)
Runner = CoreRunner | SqliteRunner

IN_CHUNK = 500  # bound parameters per IN list: far below every SQLite build's limit

# Article columns written from the item (besides url and the times); compared on a re-fetch.
_ARTICLE_FIELDS = (
    "post_id",
    "slug",
    "title",
    "subtitle",
    "type",
    "section",
    "published_at",
    "published_at_raw",
    "modified_at",
    "modified_at_raw",
    "image_url",
    "image_caption",
    "image_credit",
    "image_alt",
    "body_text",
    "body_html",
    "word_count",
    "language",
    "content_hash",
    "lists_hash",
    "parser_version",
    "extractor",
    "declared_canonical",
)
_BODY_TEXT = _ARTICLE_FIELDS.index("body_text")
# Sighting columns a re-sighting refreshes (first_seen_at never changes).
_SIGHTING_REFRESHED = ("position", "content_id", "last_seen_at")
# Teaser contents whose ids the writer remembers (each a hash and an int): the keep-reading feed
# shows the same recent posts under every article, so most pages find all theirs here.
_CONTENT_IDS_KEPT = 4096


def _norm_text(value: str | None) -> str:
    if not value:
        return ""
    return " ".join(unicodedata.normalize("NFC", value).split())


def content_hash(article: Article) -> str:
    """sha256 hex of an article's content: title, subtitle, body text and author names.

    Unicode (NFC) and whitespace are normalised, so a re-parse that only re-flows text is not a
    new revision. Separators are control characters that normalised text never contains.
    """
    parts = (
        _norm_text(article.title),
        _norm_text(article.subtitle),
        _norm_text(article.body_text),
        "\x1e".join(_norm_text(a.name) for a in article.authors),
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _unique_by_name(items: Iterable[_Named]) -> list[_Named]:
    # A name listed twice would break the (article_id, author_id) key: keep its first place.
    seen: dict[str, _Named] = {}
    for item in items:
        name = item.name.strip()
        if name and name not in seen:
            seen[name] = item
    return list(seen.values())


def _lists_hash(authors: Sequence[Author], tags: Sequence[Tag], article: Article) -> str:
    lists = (
        [(a.name.strip(), a.url) for a in authors],
        [(t.name.strip(), t.url) for t in tags],
        [(i.url, i.caption, i.credit, i.alt) for i in article.images],
    )
    return hashlib.sha256(json.dumps(lists, ensure_ascii=False).encode()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)


class PageWrites:
    """The write path of ``Archive``: its statements and the writes of one page's rows."""

    def _build_statements(self, dialect: str) -> None:
        # Built once: Core caches their compiled form (and SqliteRunner compiles each once), so
        # each page pays only execution.
        if dialect == "sqlite":
            upsert = sqlite.insert
        elif dialect == "postgresql":
            upsert = postgresql.insert
        else:
            raise NotImplementedError(f"the archive supports SQLite and PostgreSQL, not {dialect}")
        # Teasers are written as sightings (the ``teasers`` view reads them with their content).
        a, t, c = m.articles, m.teaser_sightings, m.captures

        self._sel_known = select(a.c.url).where(a.c.url.in_(bindparam("urls", expanding=True)))
        self._sel_article_id = select(a.c.id).where(a.c.url == bindparam("page_url"))
        self._upsert_fetch_state = fetchstate.page_upsert(dialect)

        # What the archive holds for a page, in one round trip: the id of a capture with the same
        # URL and body (None: store it), and the article row (NULLs: a new article).
        self._sel_capture = select(c.c.id).where(
            c.c.url == bindparam("capture_url"), c.c.sha256 == bindparam("sha256")
        )
        capture_id = self._sel_capture.scalar_subquery()
        one_row = select(literal_column("1").label("one")).subquery("one_row")
        self._lookup = select(
            capture_id.label("capture_id"),
            a.c.id,
            a.c.removed_at,
            *(a.c[name] for name in _ARTICLE_FIELDS),
        ).select_from(one_row.outerjoin(a, a.c.url == bindparam("article_url")))

        ins = upsert(c).on_conflict_do_nothing(index_elements=[c.c.url, c.c.sha256])
        self._ins_capture = ins.returning(c.c.id)

        self._ins_article = insert(a)
        # Issue 13: what an article's history holds, for a capture older than its current state.
        r = m.revisions
        self._sel_newest_revision = select(func.max(r.c.captured_at)).where(
            r.c.article_id == bindparam("b_article_id")
        )
        self._sel_revision_hash = (
            select(r.c.id)
            .where(r.c.article_id == bindparam("b_article_id"))
            .where(r.c.content_hash == bindparam("b_hash"))
            .limit(1)
        )
        # SET comes from the parameter names given: only the columns that differ are written, so
        # the FTS trigger (AFTER UPDATE OF title, subtitle, body_text) fires only when needed.
        self._upd_article = update(a).where(a.c.id == bindparam("b_id"))
        teasing = select(m.teaser_contents.c.id).where(
            m.teaser_contents.c.post_id == bindparam("b_post_id")
        )
        self._link_teasers = (
            update(t)
            .where(
                (t.c.url == bindparam("b_url")) | t.c.content_id.in_(teasing.scalar_subquery()),
                # Means "article_id IS NULL" (ids start at 1), written so that SQLite does not
                # pick the article_id index and scan every unlinked teaser.
                func.coalesce(t.c.article_id, 0) == 0,
            )
            .values(article_id=bindparam("b_article_id"))
        )
        # A load-more answer stored before its page (pages are split concurrently) left its
        # teasers without the page's article: the page's first store gives it to them.
        self._claim_page_teasers = (
            update(t)
            .where(
                t.c.page_url == bindparam("b_url"),
                func.coalesce(t.c.page_article_id, 0) == 0,
            )
            .values(page_article_id=bindparam("b_article_id"))
        )
        self._ins_revision = insert(m.revisions)
        r = m.revisions
        # The article's current revision holds no body (the article's is it): before the
        # article's body changes, that revision gets its own copy.
        self._keep_revision_body = (
            update(r)
            .where(r.c.article_id == bindparam("b_article_id"), r.c.body_text.is_(None))
            .values(body_text=bindparam("b_body_text"))
        )

        self._upsert_names = {}
        for table in (m.authors, m.tags):
            ins = upsert(table)
            # Fill a URL once learnt, keep a known one when a page does not give it. DO UPDATE
            # (not DO NOTHING) so that RETURNING answers for known names too: one round trip.
            self._upsert_names[table.name] = ins.on_conflict_do_update(
                index_elements=[table.c.name],
                set_={"url": func.coalesce(ins.excluded.url, table.c.url)},
            ).returning(table.c.name, table.c.id)
        aa, at, ai = m.article_authors, m.article_tags, m.article_images
        self._sel_links = {
            "authors": select(aa.c.author_id)
            .where(aa.c.article_id == bindparam("b_article_id"))
            .order_by(aa.c.position),
            "tags": select(at.c.tag_id)
            .where(at.c.article_id == bindparam("b_article_id"))
            .order_by(at.c.position),
        }
        self._sel_images = (
            select(ai.c.url, ai.c.caption, ai.c.credit, ai.c.alt)
            .where(ai.c.article_id == bindparam("b_article_id"))
            .order_by(ai.c.position)
        )
        self._ins_links = {table.name: insert(table) for table in (aa, at, ai)}
        self._del_links = {
            table.name: delete(table).where(table.c.article_id == bindparam("b_article_id"))
            for table in (aa, at, ai)
        }

        self._sel_page_teasers = select(t.c.url).where(
            t.c.page_url == bindparam("page_url"), t.c.url.in_(bindparam("urls", expanding=True))
        )
        tc = m.teaser_contents
        self._sel_teaser_contents = select(tc.c.content_hash, tc.c.id).where(
            tc.c.content_hash.in_(bindparam("hashes", expanding=True))
        )
        self._ins_teaser_content = (
            upsert(tc)
            .on_conflict_do_nothing(index_elements=[tc.c.content_hash])
            .returning(tc.c.content_hash, tc.c.id)
        )
        # A teaser's target, looked up inside its own upsert: the article with its URL, else the
        # oldest with its post id (target_post_id is NULL when the teaser has none).
        target = func.coalesce(
            select(a.c.id).where(a.c.url == bindparam("target_url")).scalar_subquery(),
            select(func.min(a.c.id))
            .where(a.c.post_id == bindparam("target_post_id"))
            .scalar_subquery(),
        )
        ins = upsert(t).values(article_id=target)
        refreshed: dict[str, Any] = {name: ins.excluded[name] for name in _SIGHTING_REFRESHED}
        # A target or page article learnt once stays, even if a later sighting cannot name it.
        refreshed["article_id"] = func.coalesce(ins.excluded.article_id, t.c.article_id)
        refreshed["page_article_id"] = func.coalesce(
            ins.excluded.page_article_id, t.c.page_article_id
        )
        self._upsert_teasers = ins.on_conflict_do_update(
            index_elements=[t.c.page_url, t.c.url], set_=refreshed
        )

    def _insert_capture(
        self,
        run: Runner,
        page: Page | FeedPage,
        url: str,
        sha256: str,
        run_id: int | None,
        now: str,
    ) -> tuple[int, bool]:
        # Compressed only now: an unchanged re-fetch was answered by the lookup.
        feed = page if isinstance(page, FeedPage) else None
        body, compression, dictionary_id = self._compressor.compress(
            run, page.body, feed is None, now
        )
        row = run.first(
            self._ins_capture,
            {
                "url": url,
                "sha256": sha256,
                "final_url": page.url,
                "requested_url": page.requested_url,
                "status": page.status,
                "fetched_at": page.fetched_at or now,
                "content_type": page.content_type,
                "headers": to_json(page.headers),
                "size": len(page.body),
                "compression": compression,
                "dictionary_id": dictionary_id,
                "body": body,
                "run_id": run_id,
                "feed_page_url": feed.page_url if feed else None,
                "feed_position": feed.position if feed else None,
                "feed_repeats": to_json(feed.repeats) if feed and feed.repeats else None,
            },
        )
        if row is None:  # another writer stored the same body in between (PostgreSQL)
            row = run.first(self._sel_capture, {"capture_url": url, "sha256": sha256})
            assert row is not None
            return row[0], False
        return row[0], True

    def _store_article(
        self,
        run: Runner,
        article: Article,
        stored: Sequence[Any] | None,
        captured_at: str,
        capture_id: int,
        now: str,
        parser_version: str | None = None,
    ) -> tuple[int, ArticleStatus]:
        """``stored``: the article row as ``_lookup`` read it (id, removed_at, fields) or None."""
        authors = _unique_by_name(article.authors)
        tags = _unique_by_name(article.tags)
        image = article.image
        values: dict[str, Any] = {
            "post_id": article.post_id,
            "slug": article.slug,
            "title": article.title,
            "subtitle": article.subtitle,
            "type": article.type,
            "section": article.section,
            "published_at": article.published_at,
            "published_at_raw": article.published_at_raw,
            "modified_at": article.modified_at,
            "modified_at_raw": article.modified_at_raw,
            "image_url": image.url if image else None,
            "image_caption": image.caption if image else None,
            "image_credit": image.credit if image else None,
            "image_alt": image.alt if image else None,
            "body_text": article.body_text,
            "body_html": article.body_html,
            "word_count": article.word_count,
            "language": article.language,
            "content_hash": content_hash(article),
            "lists_hash": _lists_hash(authors, tags, article),
            "parser_version": parser_version,
            "extractor": article.extractor,
            "declared_canonical": article.declared_canonical,
        }

        if stored is None:
            article_id = run.insert(
                self._ins_article,
                {
                    "url": article.url,
                    **values,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "changed_at": now,
                },
            )
            self._write_lists(run, article_id, authors, tags, article, replace=False)
            self._add_revision(
                run, article_id, article, authors, values, captured_at, capture_id, current=True
            )
            # Teasers stored before this article was archived now learn their target.
            run.execute(
                self._link_teasers,
                {"b_article_id": article_id, "b_url": article.url, "b_post_id": article.post_id},
            )
            run.execute(
                self._claim_page_teasers, {"b_article_id": article_id, "b_url": article.url}
            )
            return article_id, "new"

        article_id, removed_at, *old = stored
        changes = {
            name: value
            for (name, value), was in zip(values.items(), old, strict=True)
            if was != value
        }
        if changes:
            newest = run.first(self._sel_newest_revision, {"b_article_id": article_id})
            if newest and newest[0] and captured_at < newest[0]:
                # A capture older than the version the article shows (a Wayback back-fill, an
                # import of older files, a fetch retried late): its text joins the history, in
                # time order, and the article stays as its newest capture has it.
                params = {"b_article_id": article_id, "b_hash": values["content_hash"]}
                if run.first(self._sel_revision_hash, params) is not None:
                    return article_id, "unchanged"
                self._add_revision(
                    run, article_id, article, authors, values, captured_at, capture_id
                )
                return article_id, "changed"
        if removed_at is not None:
            changes["removed_at"] = None  # it answers again
        status: ArticleStatus = "unchanged"
        if "content_hash" in changes:
            status = "changed"
            changes["changed_at"] = now
        elif changes:
            status = "updated"
        if "body_text" in changes:
            run.execute(
                self._keep_revision_body,
                {"b_article_id": article_id, "b_body_text": old[_BODY_TEXT]},
            )
        run.execute(self._upd_article, {"b_id": article_id, **changes, "last_seen_at": now})
        if "lists_hash" in changes:
            self._write_lists(run, article_id, authors, tags, article, replace=True)
        if status == "changed":
            self._add_revision(
                run, article_id, article, authors, values, captured_at, capture_id, current=True
            )
        if "post_id" in changes and article.post_id:
            run.execute(
                self._link_teasers,
                {"b_article_id": article_id, "b_url": article.url, "b_post_id": article.post_id},
            )
        return article_id, status

    def _add_revision(
        self,
        run: Runner,
        article_id: int,
        article: Article,
        authors: list[Author],
        values: dict[str, Any],
        captured_at: str,
        capture_id: int,
        *,
        current: bool = False,
    ) -> None:
        """A revision row. ``current``: it becomes the article's content (the article row is
        written with ``article``'s body): then it keeps no body of its own, the article's is it
        (``revisions.article_versions`` reads it there), so a page's text is stored once, and
        ``_keep_revision_body`` copies it in before the article's body changes. Any other
        revision (a version older than the article's) keeps its text."""
        run.execute(
            self._ins_revision,
            {
                "article_id": article_id,
                "captured_at": captured_at,
                "content_hash": values["content_hash"],
                "title": article.title,
                "subtitle": article.subtitle,
                # Text only: the article row keeps the current sanitised HTML.
                "body_text": None if current else article.body_text,
                "body_html": None,
                # A JSON list: a name may hold ", " itself ("X, Jr."), a joined string could not
                # be split back into the same names.
                "authors": to_json([a.name for a in authors]),
                "capture_id": capture_id,
                "parser_version": values["parser_version"],
            },
        )

    def _write_lists(
        self,
        run: Runner,
        article_id: int,
        authors: list[Author],
        tags: list[Tag],
        article: Article,
        *,
        replace: bool,
    ) -> None:
        """Link rows for authors, tags and inline images; ``replace`` rewrites lists that differ."""
        for table, link, fk, items in (
            (m.authors, m.article_authors, "author_id", authors),
            (m.tags, m.article_tags, "tag_id", tags),
        ):
            ids: list[int] = []
            if items:
                names = [item.name.strip() for item in items]
                params = [
                    {"name": n, "url": item.url} for n, item in zip(names, items, strict=True)
                ]
                by_name = dict(run.returning(self._upsert_names[table.name], params))
                ids = [by_name[n] for n in names]
            if replace:
                key = "authors" if link is m.article_authors else "tags"
                old = run.column(self._sel_links[key], {"b_article_id": article_id})
                if old == ids:
                    continue
                run.execute(self._del_links[link.name], {"b_article_id": article_id})
            if ids:
                run.execute(
                    self._ins_links[link.name],
                    [
                        {"article_id": article_id, fk: id_, "position": i}
                        for i, id_ in enumerate(ids)
                    ],
                )

        images = [(i.url, i.caption, i.credit, i.alt) for i in article.images]
        ai = m.article_images
        if replace:
            old_images = [
                tuple(r) for r in run.rows(self._sel_images, {"b_article_id": article_id})
            ]
            if old_images == images:
                return
            run.execute(self._del_links[ai.name], {"b_article_id": article_id})
        if images:
            run.execute(
                self._ins_links[ai.name],
                [
                    {
                        "article_id": article_id,
                        "position": i,
                        "url": url,
                        "caption": caption,
                        "credit": credit,
                        "alt": alt,
                    }
                    for i, (url, caption, credit, alt) in enumerate(images)
                ],
            )

    def _store_teasers(
        self,
        run: Runner,
        page_url: str,
        page_article_id: int | None,
        teasers: Sequence[Teaser],
        now: str,
    ) -> tuple[int, int]:
        unique: dict[str, Teaser] = {}
        for teaser in teasers:
            unique.setdefault(teaser.url, teaser)  # a URL shown twice: its first place counts
        urls = list(unique)
        known = set(run.column(self._sel_page_teasers, {"page_url": page_url, "urls": urls}))

        contents = {}
        for teaser in unique.values():
            image = teaser.image
            content = {
                "post_id": teaser.post_id,
                "title": teaser.title,
                "section": teaser.section,
                # A JSON list, as everywhere else ("X, Jr." is one name, not two).
                "authors": to_json([a.name for a in teaser.authors]),
                "published_at": teaser.published_at,
                "published_at_raw": teaser.published_at_raw,
                "excerpt": teaser.excerpt,
                "has_more": teaser.has_more,
                "image_url": image.url if image else None,
                "image_caption": image.caption if image else None,
            }
            contents[teaser.url] = (m.teaser_content_hash(content), content)
        content_ids = self._teaser_content_ids(run, list(contents.values()))
        rows = [
            {
                "page_url": page_url,
                "page_article_id": page_article_id,
                "position": teaser.position,
                "url": url,
                "content_id": content_ids[contents[url][0]],
                "first_seen_at": now,
                "last_seen_at": now,
                "target_url": url,
                "target_post_id": teaser.post_id or None,
            }
            for url, teaser in unique.items()
        ]
        run.execute(self._upsert_teasers, rows)
        return sum(1 for url in urls if url not in known), len(urls)

    def _teaser_content_ids(
        self, run: Runner, contents: list[tuple[str, dict[str, Any]]]
    ) -> dict[str, int]:
        """``teaser_contents.id`` by content hash, each content stored once (added if new)."""
        kept = self._content_ids
        found = {h: kept[h] for h, _ in contents if h in kept}
        missing = {h: content for h, content in contents if h not in found}
        if missing:
            found.update(run.rows(self._sel_teaser_contents, {"hashes": list(missing)}))
            new = [{"content_hash": h, **c} for h, c in missing.items() if h not in found]
            if new:
                found.update(run.returning(self._ins_teaser_content, new))
                if any(h not in found for h in missing):  # another writer added it (PostgreSQL)
                    found.update(run.rows(self._sel_teaser_contents, {"hashes": list(missing)}))
            if len(kept) > _CONTENT_IDS_KEPT:
                kept.clear()
            kept.update((h, found[h]) for h in missing)
        return found
