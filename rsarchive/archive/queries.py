"""Reading the archive: full-text search, listings, one article, teasers, stats and exports.

Everything here is SQLAlchemy Core with bound parameters: a user's search words, names and
dates are values, never SQL. ``open_reader`` (``opening.open_archive`` and the schema check) is
the one way in; the search language is in ``searchquery``, what a user may ask for (dates,
filters, URL forms) in ``filters``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, Self

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    bindparam,
    case,
    column,
    func,
    or_,
    select,
    table,
)
from sqlalchemy.exc import OperationalError

from . import models as m
from .engine import READ_ONLY
from .filters import Filters, fold, url_variants
from .opening import (
    FTS_TABLE,
    BadQuery,
    NotFound,
    ReadError,
    open_archive,
)
from .revisions import Version, article_versions, revision_authors
from .schema import check_schema
from .searchquery import fts_query, lowercase_hint

#: bm25 weights of the indexed columns: a word in the title counts ten body words.
BM25_WEIGHTS = (10.0, 5.0, 1.0)
#: Markers around search hits in snippets (control characters: never in article text).
HIT_START, HIT_END = "\x02", "\x03"
SNIPPET_TOKENS = 24
_IN_CHUNK = 500


# -- opening -------------------------------------------------------------------------------------


def open_reader(url: str) -> Reader:
    """Open the archive at ``url`` (any SQLAlchemy URL) for reading.

    ``open_archive``, then the schema check: raises what it raises, or ``SchemaError`` (the
    schema is older or newer than this code). Every query command opens the archive here.
    """
    engine = open_archive(url)
    try:
        check_schema(engine)  # SchemaError: older or newer than this code; exit 78 with the fix
    except BaseException:
        engine.dispose()
        raise
    return Reader(engine)


# -- reading -------------------------------------------------------------------------------------

_fts = table(FTS_TABLE, column("rowid"), column(FTS_TABLE))
# The page a teaser was seen on (built once: an alias costs ~1 ms to set up).
_page = m.articles.alias("page")

# Article columns of a summary line (search, list) and of the export layout.
_SUMMARY = ("id", "url", "title", "subtitle", "type", "section", "published_at", "removed_at")
EXPORT_FIELDS = (
    "id",
    "url",
    "post_id",
    "slug",
    "title",
    "subtitle",
    "type",
    "section",
    "authors",
    "tags",
    "published_at",
    "modified_at",
    "image_url",
    "image_caption",
    "image_credit",
    "word_count",
    "language",
    "first_seen_at",
    "last_seen_at",
    "changed_at",
    "removed_at",
    "content_hash",
    "body_text",
    "body_html",
)


def _is_query_error(exc: OperationalError) -> bool:
    # FTS5's own parse errors; column filters are only ever known columns (see fts_query), so a
    # "no such column" is a schema problem, not the user's.
    return str(exc.orig).startswith(("fts5:", "unterminated string", "unknown special"))


def _snippets(match: ColumnElement[bool], prefix: bool) -> Select:
    """(rowid, snippet) of the matching rows ``ids`` (an expanding parameter; for a prefix query
    also ``lo`` and ``hi``, their smallest and largest).

    ``rowid IN (...)`` makes FTS5 run the query once per id; cheap for words, but a prefix
    (``semicond*``) is expanded again on every run (~0.35 ms each on 100k articles). Then one run
    over the ids' rowid range is cheaper, making snippets only for the ids (CASE short-circuits).
    """
    snippet = func.snippet(_fts.c[FTS_TABLE], -1, HIT_START, HIT_END, "…", SNIPPET_TOKENS)
    ids = bindparam("ids", expanding=True)
    if not prefix:
        return select(_fts.c.rowid, snippet).where(match, _fts.c.rowid.in_(ids))
    only = case((_fts.c.rowid.in_(ids), snippet), else_=None).label("snippet")
    ranged = (
        select(_fts.c.rowid, only)
        .where(match, _fts.c.rowid.between(bindparam("lo"), bindparam("hi")))
        .subquery()
    )
    return select(ranged.c.rowid, ranged.c.snippet).where(ranged.c.snippet.is_not(None))


def _dated(column: Any, dialect: str, *, desc: bool) -> list[Any]:
    """Order by a time, undated rows last on every engine (SQLite sorts NULL first)."""
    order = column.desc() if desc else column.asc()
    if dialect != "sqlite":
        return [order.nulls_last()]
    # SQLite puts NULL first in ascending order, last in descending (where the index serves).
    return [order] if desc else [column.is_(None), order]


#: ``list --sort``: each a function of (articles table, dialect) -> ORDER BY terms.
SORTS: dict[str, Any] = {
    "newest": lambda a, d: [*_dated(a.c.published_at, d, desc=True), a.c.id.desc()],
    "oldest": lambda a, d: [*_dated(a.c.published_at, d, desc=False), a.c.id],
    "title": lambda a, d: [func.lower(a.c.title), a.c.id],
    "words": lambda a, d: [a.c.word_count.desc(), a.c.id],
    "changed": lambda a, d: [*_dated(a.c.changed_at, d, desc=True), a.c.id.desc()],
}


def _search_statements() -> dict[str, Any]:
    """What every search runs besides its ranking, built once: building and cache-keying a
    statement costs SQLAlchemy ~0.3 ms, which four times over was most of a search that matches
    few articles."""
    a, aa, au = m.articles, m.article_authors, m.authors
    match = _fts.c[FTS_TABLE].op("MATCH")(bindparam("q"))
    score = func.bm25(_fts.c[FTS_TABLE], *BM25_WEIGHTS).label("score")
    ids = bindparam("ids", expanding=True)
    return {
        "match": match,
        "score": score,
        # The common search (no filter): the best ``limit`` after ``offset``.
        "ranked": select(_fts.c.rowid, score)
        .where(match)
        .order_by(score, _fts.c.rowid)
        .limit(bindparam("limit"))
        .offset(bindparam("offset")),
        "snippets": _snippets(match, prefix=False),
        "snippets_prefix": _snippets(match, prefix=True),
        "summaries": select(*(a.c[name] for name in _SUMMARY)).where(a.c.id.in_(ids)),
        "authors": select(aa.c.article_id, au.c.name)
        .join(au, au.c.id == aa.c.author_id)
        .where(aa.c.article_id.in_(ids))
        .order_by(aa.c.article_id, aa.c.position),
    }


_SEARCH = _search_statements()


class Reader:
    """Read-only access to one archive; every method opens its own read transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**READ_ONLY)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- search and listings ---------------------------------------------------------------

    def resolve(self, filters: Filters) -> Filters:
        """``filters`` with the authors and tags it names looked up, matched without case or
        accents in Python (SQLite's LIKE folds ASCII case only; PostgreSQL may lack unaccent):
        ``--author`` is a part of a name, ``--tag`` a whole one. The tables are small."""
        if not (filters.author and filters.author_ids is None) and not (
            filters.tag and filters.tag_ids is None
        ):
            return filters
        found: dict[str, tuple[int, ...] | None] = {}
        with self._reader.connect() as conn:
            if filters.author and filters.author_ids is None:
                want = fold(filters.author)
                rows = conn.execute(select(m.authors.c.id, m.authors.c.name))
                found["author_ids"] = tuple(i for i, name in rows if want in fold(name))
            if filters.tag and filters.tag_ids is None:
                want = fold(filters.tag)
                rows = conn.execute(select(m.tags.c.id, m.tags.c.name))
                found["tag_ids"] = tuple(i for i, name in rows if fold(name) == want)
        return replace(filters, **found)

    def search(
        self, query: str, filters: Filters = Filters(), *, limit: int = 20, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Articles matching the FTS5 ``query``, best first (bm25, title weighted highest),
        each with a ``snippet`` whose hits are wrapped in ``HIT_START``/``HIT_END``."""
        if self.engine.dialect.name != "sqlite":
            raise ReadError("full-text search needs the SQLite archive (articles_fts)")
        match, score = _SEARCH["match"], _SEARCH["score"]
        # ORDER BY bm25(...) LIMIT n, not FTS5's ORDER BY rank: SQLite's sorter keeps only the
        # best n rows, where FTS5's rank order sorts every match first (about 1.4x slower on
        # 10k matches). Filters are in the same statement, so LIMIT counts filtered rows. The
        # snippet (costly) is made afterwards, for the page of results only.
        filters = self.resolve(filters)
        clauses = filters.fts_clauses(_fts.c.rowid)
        params: dict[str, Any] = {"q": fts_query(query), "limit": limit, "offset": offset}
        ranked = _SEARCH["ranked"]
        if clauses:
            ranked = (
                select(_fts.c.rowid, score)
                .where(match, *clauses)
                .order_by(score, _fts.c.rowid)
                .limit(bindparam("limit"))
                .offset(bindparam("offset"))
            )
        try:
            with self._reader.connect() as conn:
                hits = conn.execute(ranked, params).all()
                if not hits:
                    return []
                ids = [h.rowid for h in hits]
                prefix = "*" in params["q"]
                snippets = dict(
                    conn.execute(
                        _SEARCH["snippets_prefix" if prefix else "snippets"],
                        {"q": params["q"], "ids": ids, "lo": min(ids), "hi": max(ids)}
                        if prefix
                        else {"q": params["q"], "ids": ids},
                    ).all()
                )
                rows = {
                    r["id"]: dict(r)
                    for r in conn.execute(_SEARCH["summaries"], {"ids": ids}).mappings()
                }
                names: dict[int, list[str]] = {}
                for article_id, name in conn.execute(_SEARCH["authors"], {"ids": ids}):
                    names.setdefault(article_id, []).append(name)
        except OperationalError as exc:
            if _is_query_error(exc):
                why = str(exc.orig).removeprefix("fts5: ")
                raise BadQuery(
                    f"the search {query!r} is not one FTS5 understands ({why}); see the search "
                    "syntax in `rsarchive search --help`" + lowercase_hint(query)
                ) from None
            raise
        out = []
        for hit in hits:
            row = rows[hit.rowid]
            row["authors"] = names.get(hit.rowid, [])
            row["score"] = round(-hit.score, 4)
            row["snippet"] = snippets.get(hit.rowid, "")
            out.append(row)
        return out

    def search_count(self, query: str, filters: Filters = Filters()) -> int:
        """How many articles ``search`` would find with no limit (for "showing 20 of 143")."""
        if self.engine.dialect.name != "sqlite":
            raise ReadError("full-text search needs the SQLite archive (articles_fts)")
        filters = self.resolve(filters)
        stmt = (
            select(func.count())
            .select_from(_fts)
            .where(_SEARCH["match"], *filters.fts_clauses(_fts.c.rowid))
        )
        try:
            with self._reader.connect() as conn:
                return conn.scalar(stmt, {"q": fts_query(query)}) or 0
        except OperationalError as exc:
            if _is_query_error(exc):
                raise BadQuery(f"the search {query!r} is not one FTS5 understands") from None
            raise

    def list_articles(
        self,
        filters: Filters = Filters(),
        *,
        limit: int | None = 20,
        offset: int = 0,
        sort: str = "newest",
    ) -> list[dict[str, Any]]:
        """Articles in ``sort`` order (``SORTS``: newest first by default; undated last)."""
        filters = self.resolve(filters)
        a = m.articles
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}")
        stmt = (
            select(a.c.id)
            .where(*filters.clauses())
            .order_by(*SORTS[sort](a, self.engine.dialect.name))
            .limit(limit)
            .offset(offset)
        )
        with self._reader.connect() as conn:
            ids = list(conn.scalars(stmt))
            rows = self._summaries(conn, ids)
        return [rows[i] for i in ids]

    def count_articles(self, filters: Filters = Filters()) -> int:
        """How many articles match ``filters`` (the total of ``list`` and ``export``)."""
        filters = self.resolve(filters)
        a = m.articles
        with self._reader.connect() as conn:
            return conn.scalar(select(func.count()).select_from(a).where(*filters.clauses())) or 0

    def _summaries(self, conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        a = m.articles
        rows = {
            r["id"]: dict(r)
            for r in conn.execute(
                select(*(a.c[name] for name in _SUMMARY)).where(a.c.id.in_(ids))
            ).mappings()
        }
        names = self._names(conn, ids, m.article_authors, m.authors, "author_id")
        for article_id, row in rows.items():
            row["authors"] = [n for n, _ in names.get(article_id, ())]
        return rows

    @staticmethod
    def _names(
        conn: Connection, ids: Sequence[int], link: Any, named: Any, key: str
    ) -> dict[int, list[tuple[str, str | None]]]:
        """{article id: [(name, url), ...] in page order} for authors or tags."""
        out: dict[int, list[tuple[str, str | None]]] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            stmt = (
                select(link.c.article_id, named.c.name, named.c.url)
                .join(named, named.c.id == link.c[key])
                .where(link.c.article_id.in_(ids[i : i + _IN_CHUNK]))
                .order_by(link.c.article_id, link.c.position)
            )
            for article_id, name, url in conn.execute(stmt):
                out.setdefault(article_id, []).append((name, url))
        return out

    def counts(self, kind: str) -> list[dict[str, Any]]:
        """Authors, sections or tags with their article counts, most articles first."""
        a = m.articles
        n = func.count(a.c.id.distinct()).label("articles")
        if kind == "sections":
            stmt = select(a.c.section.label("name"), n).where(a.c.section.is_not(None))
            stmt = stmt.group_by(a.c.section)
        elif kind in ("authors", "tags"):
            link, named = (
                (m.article_authors, m.authors) if kind == "authors" else (m.article_tags, m.tags)
            )
            key = "author_id" if kind == "authors" else "tag_id"
            stmt = (
                select(named.c.name, named.c.url, n)
                .select_from(named.join(link, link.c[key] == named.c.id).join(a))
                .group_by(named.c.id, named.c.name, named.c.url)
            )
        else:
            raise ValueError(kind)
        stmt = stmt.order_by(n.desc(), stmt.selected_columns.name)
        with self._reader.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    # -- one article ---------------------------------------------------------------------------

    def find_article_id(self, ref: str, site_url: str) -> int:
        """The id of the article ``ref`` names: an id, a post id, a URL, or a path on the site."""
        from ..urls import normalize_url

        a = m.articles
        ref = ref.strip()
        with self._reader.connect() as conn:
            if ref.isdigit():
                found = conn.scalar(select(a.c.id).where(a.c.id == int(ref)))
                if found is None:
                    found = conn.scalar(select(a.c.id).where(a.c.post_id == ref).limit(1))
                if found is not None:
                    return found
                raise NotFound(f"no archived article with id or post id {ref}")
            url = normalize_url(ref, site_url.rstrip("/") + "/")
            # The canonical URL decides whether stored URLs have "www." and https; accept
            # either of each.
            found = conn.scalar(
                select(a.c.id).where(a.c.url.in_(url_variants(url))).order_by(a.c.url != url)
            )
            if found is not None:
                return found
            teased = conn.scalar(
                select(func.count())
                .select_from(m.teaser_sightings)
                .where(m.teaser_sightings.c.url == url)
            )
        seen = f" (seen as a teaser on {teased} page{'s' * (teased != 1)})" if teased else ""
        raise NotFound(f"no archived article at {url}{seen}")

    def article(self, article_id: int) -> dict[str, Any]:
        """Everything about one article: its row, authors, tags, teasers, where it was teased."""
        a, t, page = m.articles, m.teasers, _page
        with self._reader.connect() as conn:
            row = conn.execute(select(a).where(a.c.id == article_id)).mappings().first()
            if row is None:
                raise NotFound(f"no archived article with id {article_id}")
            art = {k: v for k, v in row.items() if k != "lists_hash"}
            art["authors"] = [
                {"name": n, "url": u}
                for n, u in self._names(
                    conn, [article_id], m.article_authors, m.authors, "author_id"
                ).get(article_id, [])
            ]
            art["tags"] = [
                {"name": n, "url": u}
                for n, u in self._names(conn, [article_id], m.article_tags, m.tags, "tag_id").get(
                    article_id, []
                )
            ]
            art["revisions"] = conn.scalar(
                select(func.count()).where(m.revisions.c.article_id == article_id)
            )
            art["teasers"] = self._teasers(conn, art["url"])
            teased_by = (
                select(
                    t.c.page_url,
                    page.c.id.label("page_article_id"),
                    page.c.title.label("page_title"),
                    t.c.position,
                    t.c.first_seen_at,
                    t.c.last_seen_at,
                )
                .select_from(t.outerjoin(page, page.c.id == t.c.page_article_id))
                .where(or_(t.c.article_id == article_id, t.c.url == art["url"]))
                .order_by(t.c.first_seen_at, t.c.page_url)
            )
            art["teased_by"] = [
                {**r, "position": r["position"] + 1} for r in conn.execute(teased_by).mappings()
            ]
        return art

    def history(self, article_id: int) -> tuple[dict[str, Any], list[Version]]:
        """An article's summary (id, url, title, parser_version, extractor, changed_at,
        removed_at) and every stored revision of it, oldest first."""
        a = m.articles
        cols = (
            a.c.id,
            a.c.url,
            a.c.title,
            a.c.parser_version,
            a.c.extractor,
            a.c.changed_at,
            a.c.removed_at,
        )
        with self._reader.connect() as conn:
            row = conn.execute(select(*cols).where(a.c.id == article_id)).mappings().first()
            if row is None:
                raise NotFound(f"no archived article with id {article_id}")
            return dict(row), article_versions(conn, article_id)

    def teasers(self, page_ref: str, site_url: str) -> list[dict[str, Any]]:
        """The keep-reading feed seen on the page at ``page_ref`` (URL or path), in order."""
        from ..urls import normalize_url

        url = normalize_url(page_ref, site_url.rstrip("/") + "/")
        with self._reader.connect() as conn:
            # As for articles: with or without "www.", over http or https.
            rows = next(filter(None, (self._teasers(conn, u) for u in url_variants(url))), [])
        if not rows:
            raise NotFound(f"no teasers archived for the page {url}")
        return rows

    @staticmethod
    def _teasers(conn: Connection, page_url: str) -> list[dict[str, Any]]:
        t, a = m.teasers, m.articles
        stmt = (
            select(
                t.c.position,
                t.c.title,
                t.c.url,
                t.c.section,
                t.c.authors,
                t.c.excerpt,
                a.c.id.label("article_id"),
                t.c.first_seen_at,
                t.c.last_seen_at,
            )
            .select_from(t.outerjoin(a, or_(a.c.id == t.c.article_id, a.c.url == t.c.url)))
            .where(t.c.page_url == page_url)
            .order_by(t.c.position, t.c.id)
        )
        out = []
        for r in conn.execute(stmt).mappings():
            row = dict(r)
            # Counted from 1 for people, as search results are (the table counts from 0).
            row["position"] += 1
            row["authors"] = revision_authors(row["authors"])
            row["archived"] = row["article_id"] is not None
            out.append(row)
        return out

    # -- totals --------------------------------------------------------------------------------

    def stats(self, *, runs: int = 10) -> dict[str, Any]:
        """Totals, articles per month (by ``published_at``) and the last ``runs`` crawl runs."""
        a, c, r, ts = m.articles, m.captures, m.crawl_runs, m.teaser_sightings

        def count(tbl: Any, *where: ColumnElement[bool]) -> Select:
            return select(func.count()).select_from(tbl).where(*where)

        month = func.substr(a.c.published_at, 1, 7).label("month")
        with self._reader.connect() as conn:
            totals = {
                "articles": conn.scalar(count(a)),
                "removed": conn.scalar(count(a, a.c.removed_at.is_not(None))),
                "authors": conn.scalar(count(m.authors)),
                "tags": conn.scalar(count(m.tags)),
                "teasers": conn.scalar(count(ts)),
                "teaser_pages": conn.scalar(select(func.count(ts.c.page_url.distinct()))),
                "revisions": conn.scalar(count(m.revisions)),
            }
            cap = conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(c.c.size), 0),
                    func.coalesce(func.sum(func.length(c.c.body)), 0),
                )
            ).one()
            totals.update(captures=cap[0], capture_bytes=cap[1], capture_bytes_stored=cap[2])
            # Of them, the load-more answers (JSON) of keep-reading feeds; the rest are pages.
            totals["feed_captures"] = conn.scalar(count(c, c.c.feed_page_url.is_not(None)))
            per_month = [
                {"month": mo, "articles": n}
                for mo, n in conn.execute(
                    select(month, func.count())
                    .where(a.c.published_at.is_not(None))
                    .group_by(month)
                    .order_by(month)
                )
            ]
            undated = conn.scalar(count(a, a.c.published_at.is_(None)))
            last_runs = [
                dict(row)
                for row in conn.execute(
                    select(
                        r.c.id,
                        r.c.spider,
                        r.c.started_at,
                        r.c.finished_at,
                        r.c.status,
                        r.c.finish_reason,
                        r.c.exit_code,
                    )
                    .order_by(r.c.id.desc())
                    .limit(runs)
                ).mappings()
            ]
        return {
            "totals": totals,
            "per_month": per_month,
            "undated": undated,
            "runs": last_runs,
        }

    # -- export --------------------------------------------------------------------------------

    def export(self, filters: Filters = Filters(), *, batch: int = 500) -> Iterator[dict[str, Any]]:
        """Every article matching ``filters`` in archive order (by id), as ``EXPORT_FIELDS``
        dicts with ``authors`` and ``tags`` as lists of names; in constant memory: rows are
        streamed ``batch`` at a time and each batch's names fetched on their own."""
        filters = self.resolve(filters)
        a = m.articles
        cols = [a.c[f] for f in EXPORT_FIELDS if f not in ("authors", "tags")]
        stmt = select(*cols).where(*filters.clauses()).order_by(a.c.id)
        with self._reader.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(stmt)
            for part in result.mappings().partitions():
                ids = [r["id"] for r in part]
                authors = self._names(conn, ids, m.article_authors, m.authors, "author_id")
                tags = self._names(conn, ids, m.article_tags, m.tags, "tag_id")
                for r in part:
                    row = {f: r.get(f) for f in EXPORT_FIELDS}
                    row["authors"] = [n for n, _ in authors.get(r["id"], ())]
                    row["tags"] = [n for n, _ in tags.get(r["id"], ())]
                    yield row
                # Let the batch go before the next one is fetched: one batch in memory, not two.
                del part
