"""The archive: its connections, each page's transaction (its own, or a SAVEPOINT of a batch),
crawl runs, a page's writes in order (``writes.py`` says how each row is written), and the few
reads the crawl needs. Re-fetches that change nothing write nothing but the times seen."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import (
    Connection,
    Engine,
    func,
    insert,
    select,
    update,
)

from ..items import FeedPage, Page
from ..urls import normalize_url
from . import fetchstate
from . import models as m
from .codec import (
    FIRST_TRAINING,
    Dictionaries,
    PageCompressor,
    capture_body,
)

# Re-exported: they lived here before codec.py, and other modules import them from here.
from .codec import MissingCodec as MissingCodec
from .codec import compress_body as compress_body
from .codec import decompress_body as decompress_body
from .engine import READ_ONLY, make_engine
from .faults import reached
from .models import RUN_STATUSES, utc_now_iso
from .runner import CoreRunner, SqliteCompiledCache, SqliteRunner
from .schema import prepare_schema
from .writes import IN_CHUNK, ArticleStatus, PageWrites, Runner, to_json

logger = logging.getLogger(__name__)

_REMOVED_STATUSES = frozenset({404, 410})


@dataclass(slots=True)
class StoreResult:
    """What ``Archive.store_page`` did with one page.

    ``article_status``: ``"new"``; ``"changed"`` (content differs: a revision was added);
    ``"updated"`` (only metadata such as section, tags, dates, the parser version or
    ``removed_at`` differed);
    ``"unchanged"`` (only ``last_seen_at`` moved); None when the page has no article.
    ``teasers_seen`` counts the page's distinct teasers, ``teasers_new`` those first seen now.
    """

    article_id: int | None = None
    article_status: ArticleStatus | None = None
    teasers_new: int = 0
    teasers_seen: int = 0
    capture_new: bool = False
    capture_id: int | None = None


@contextmanager
def _raw_savepoint(conn: Connection) -> Iterator[None]:
    """A SAVEPOINT run on the sqlite3 connection itself, inside ``conn``'s transaction."""
    raw: Any = conn.connection.driver_connection
    raw.execute("SAVEPOINT page")
    try:
        yield
    except BaseException:
        try:
            raw.execute("ROLLBACK TO page")
            raw.execute("RELEASE page")
        except Exception:  # SQLite ended the transaction (a full disk): the first error says why
            pass
        raise
    raw.execute("RELEASE page")


class Archive(PageWrites):
    """The archive database: what the Scrapy store pipeline and the ``rsarchive`` command use."""

    def __init__(
        self,
        database_url: str,
        *,
        direct_sqlite: bool = True,
        dictionary_after: int = FIRST_TRAINING,
    ) -> None:
        """Open the archive at ``database_url``, creating it (at the current schema) if empty.

        Raises ``SchemaError`` when the database's schema is older or newer than this code
        (``rsarchive db upgrade`` migrates it).

        Any thread may call the methods, one at a time for the writes (``store_page``,
        ``start_run``, ``finish_run``, ``close``): a dedicated writer thread is the intended use.

        ``direct_sqlite``: on SQLite, ``store_page`` runs its statements straight on the sqlite3
        connection, compiled once from the same Core statements (see ``runner``). False sends them
        through SQLAlchemy Core as on other engines; so does an engine that logs its statements
        (``echo``, or the ``sqlalchemy.engine`` logger at INFO).

        ``dictionary_after``: pages stored before the first capture dictionary is trained (see
        ``codec``).
        """
        self.engine: Engine = make_engine(database_url)
        try:
            prepare_schema(self.engine)
        except BaseException:
            self.engine.dispose()
            raise
        self._reader = self.engine.execution_options(**READ_ONLY)
        self._build_statements(self.engine.dialect.name)
        self._sqlite_cache: SqliteCompiledCache | None = None
        # The writer's own connection, held from its first page to close(): a pool checkout
        # (and on SQLite its reset) per page cost more than a small page's statements.
        self._writer: Connection | None = None
        self._writer_logs = False
        #: The capture dictionaries read so far (for ``capture_body``).
        self.dictionaries = Dictionaries()
        self._compressor = PageCompressor(self.dictionaries, first_training=dictionary_after)
        # teaser_contents ids by content hash. Contents are never changed or deleted, so an id
        # stays true once committed; a rollback forgets them all (_forget_uncommitted).
        self._content_ids: dict[str, int] = {}
        # Inside batched(): (pages per commit, pages stored since the last commit).
        self._batch: list[int] | None = None
        dialect = self.engine.dialect
        if direct_sqlite and dialect.name == "sqlite" and dialect.driver == "pysqlite":
            self._sqlite_cache = SqliteCompiledCache(dialect)

    # -- life cycle --------------------------------------------------------------------------

    def close(self) -> None:
        self.release_writer()
        self.engine.dispose()

    def release_writer(self) -> None:
        """Close the writer's connection (rolling back what it left open); the next write opens
        another."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        live = not (writer.closed or writer.invalidated)
        raw = writer.connection.dbapi_connection if live else None
        try:
            writer.close()
        except Exception as exc:
            # Its rollback refused too (the disk that refused the write), and the driver's
            # connection would hold the write lock until collected: close it here.
            logger.debug("the writer's connection closed with an error: %s", exc)
            if raw is not None:
                try:
                    raw.close()
                except Exception as close_exc:
                    logger.debug("and its driver connection: %s", close_exc)

    def make_room(self) -> None:
        """After a write the disk refused: let go of the writer's connection and, on SQLite,
        fold the write-ahead log into the database and truncate it. That returns the log's
        space, so the few bytes that close the run's row can still be written (best effort:
        a disk with no room at all refuses this too)."""
        self.release_writer()
        if self.engine.dialect.name != "sqlite":
            return
        # On the driver's connection itself: inside a transaction (which a SQLAlchemy connection
        # begins) SQLite refuses a checkpoint.
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except Exception as exc:  # the run's close reports the disk's state
            logger.debug("no checkpoint after a refused write: %s", exc)
        finally:
            raw.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A connection for queries; on SQLite it never takes the write lock."""
        with self._reader.connect() as conn:
            yield conn

    @contextmanager
    def batched(self, pages: int = 200) -> Iterator[None]:
        """Within the block, ``store_page`` and ``store_feed_page`` commit every ``pages`` pages
        rather than each one; each page runs in its own SAVEPOINT, so a page that fails is rolled
        back alone and the others stay.

        For re-reads whose source outlives a crash (``reparse`` replays captures): a crash loses
        at most the pages since the last commit, whole, and running again re-reads them. A crawl
        commits every page (its pages exist nowhere else). Other writes (``start_run``,
        ``finish_run``) must wait until the block ends: on SQLite the batch holds the write lock.
        """
        if self._batch is not None:
            raise RuntimeError("already batching")
        conn = self._writer_connection()
        self._batch = [max(1, pages), 0]
        try:
            yield
        finally:
            self._batch = None
            if conn.in_transaction():
                # Every page in it is whole (its SAVEPOINT released): keep them, even on error.
                try:
                    conn.commit()
                except BaseException:
                    self._forget_uncommitted()  # a dictionary, teaser contents: gone too
                    conn.rollback()
                    raise

    def in_write_transaction(self) -> bool:
        """Inside ``batched``: whether its transaction is still open. SQLite ends the whole
        transaction on some errors (a full disk, an I/O error), whatever SAVEPOINTs were open,
        and the pages stored in it so far are gone then."""
        writer = self._writer
        if writer is None or writer.closed or not writer.in_transaction():
            return False
        if self.engine.dialect.name != "sqlite":
            return True  # PostgreSQL keeps it: a failed page rolls back to its SAVEPOINT
        return bool(writer.connection.driver_connection.in_transaction)

    def _writer_connection(self) -> Connection:
        writer = self._writer
        # A connection decides at its opening whether it logs statements: one opened before
        # SQLAlchemy's logger was turned up would stay silent, so it is opened again then.
        logs = self.engine.logger.isEnabledFor(logging.INFO)
        if writer is not None and self._batch is None and self._writer_logs != logs:
            writer.close()
            writer = None
        if writer is None or writer.closed or writer.invalidated:
            writer = self._writer = self.engine.connect()
            self._writer_logs = logs
        return writer

    @contextmanager
    def _page_transaction(self) -> Iterator[Connection]:
        """One page's writes: a transaction of their own, or a SAVEPOINT in the batch's."""
        conn = self._writer_connection()
        batch = self._batch
        try:
            if batch is None:
                with conn.begin():
                    yield conn
                return
            if not conn.in_transaction():
                conn.begin()
            if self._sqlite_cache is None:
                with conn.begin_nested():
                    yield conn
            else:
                # SQLAlchemy's SAVEPOINT costs about what a small page's own statements do
                # (~0.2 ms of Python a page); on sqlite3 the statements go straight to it.
                with _raw_savepoint(conn):
                    yield conn
        except BaseException:
            self._forget_uncommitted()
            raise
        batch[1] += 1
        if batch[1] >= batch[0]:
            try:
                conn.commit()
            except BaseException:
                self._forget_uncommitted()
                raise
            batch[1] = 0

    def _forget_uncommitted(self) -> None:
        """After a rollback: what the writer remembers may name rows that are gone with it."""
        self._compressor.reset()  # a dictionary trained in it was rolled back too
        # Teaser content ids: all of them, as SQLite may end a batch's whole transaction.
        self._content_ids.clear()

    # -- crawl runs --------------------------------------------------------------------------

    def start_run(self, spider: str, args: dict[str, Any]) -> int:
        """Record a run that starts now; returns its id for ``finish_run`` and ``store_page``."""
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(m.crawl_runs).values(
                    spider=spider,
                    args=to_json(args),
                    started_at=utc_now_iso(),
                    status="running",
                    pid=os.getpid(),
                )
            )
            run_id = result.inserted_primary_key[0]
        reached("run")
        return run_id

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        finish_reason: str | None,
        stats: dict[str, Any],
        exit_code: int | None = None,
    ) -> None:
        """Close a run: its end time, outcome and (JSON-serialised) stats."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
        with self.engine.begin() as conn:
            conn.execute(
                update(m.crawl_runs)
                .where(m.crawl_runs.c.id == run_id)
                .values(
                    finished_at=utc_now_iso(),
                    status=status,
                    finish_reason=finish_reason,
                    stats=to_json(stats),
                    exit_code=exit_code,
                )
            )

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        """A ``crawl_runs`` row as a dict (``args`` and ``stats`` decoded), or None."""
        with self.reader() as conn:
            row = conn.execute(select(m.crawl_runs).where(m.crawl_runs.c.id == run_id)).first()
        if row is None:
            return None
        run = dict(row._mapping)
        for key in ("args", "stats"):
            if run[key] is not None:
                run[key] = json.loads(run[key])
        return run

    def close_stale_run(
        self, run_id: int, *, finish_reason: str, exit_code: int, stats: dict[str, Any]
    ) -> bool:
        """Mark a run still ``running`` as interrupted (its process stopped without closing it)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(m.crawl_runs)
                .where(m.crawl_runs.c.id == run_id, m.crawl_runs.c.status == "running")
                .values(
                    finished_at=utc_now_iso(),
                    status="interrupted",
                    finish_reason=finish_reason,
                    exit_code=exit_code,
                    stats=to_json(stats),
                )
            )
        return result.rowcount > 0

    # -- pages -------------------------------------------------------------------------------

    def store_page(
        self, page: Page, run_id: int | None = None, *, seen_at: str | None = None
    ) -> StoreResult:
        """Store one fetched page in one transaction: capture, article, its lists, teasers.

        ``seen_at``: the time to record as "seen" (default: now); a rebuild from captures
        passes the capture's fetch time, so the new archive keeps the history of the old.
        """
        now = seen_at or utc_now_iso()
        result = StoreResult()
        article = page.article
        capture_url = normalize_url(page.url)
        sha256 = hashlib.sha256(page.body).hexdigest()
        with self._page_transaction() as conn:
            run = self._runner(conn)
            try:
                # One lookup answers both "is this body stored?" and "is this article known?".
                known = run.first(
                    self._lookup,
                    {
                        "capture_url": capture_url,
                        "sha256": sha256,
                        "article_url": article.url if article is not None else None,
                    },
                )
                assert known is not None  # one row always (the article side may be NULL)
                reached("lookup")
                result.capture_id = known[0]
                if result.capture_id is None:
                    result.capture_id, result.capture_new = self._insert_capture(
                        run, page, capture_url, sha256, run_id, now
                    )
                    reached("capture")
                if article is not None:
                    stored = known[1:] if known[1] is not None else None
                    result.article_id, result.article_status = self._store_article(
                        run,
                        article,
                        stored,
                        page.fetched_at or now,
                        result.capture_id,
                        now,
                        page.parser_version,
                    )
                    reached("article")
                    page_url = article.url
                else:
                    page_url = capture_url
                if page.teasers:
                    result.teasers_new, result.teasers_seen = self._store_teasers(
                        run, page_url, result.article_id, page.teasers, now
                    )
                    reached("teasers")
                # What the next run needs (validators, feed date): with the page or not at all.
                run.execute(self._upsert_fetch_state, fetchstate.page_params(page, now))
                reached("state")
            finally:
                run.close()
        reached("commit")
        return result

    def store_feed_page(
        self, feed: FeedPage, run_id: int | None = None, *, seen_at: str | None = None
    ) -> StoreResult:
        """Store one load-more answer in one transaction: its capture and its teasers (as
        teasers of ``feed.page_url``). ``seen_at`` as for ``store_page``."""
        now = seen_at or utc_now_iso()
        result = StoreResult()
        capture_url = normalize_url(feed.url)
        sha256 = hashlib.sha256(feed.body).hexdigest()
        with self._page_transaction() as conn:
            run = self._runner(conn)
            try:
                known = run.first(self._sel_capture, {"capture_url": capture_url, "sha256": sha256})
                if known is not None:
                    result.capture_id = known[0]
                else:
                    result.capture_id, result.capture_new = self._insert_capture(
                        run, feed, capture_url, sha256, run_id, now
                    )
                if feed.teasers:
                    page = run.first(self._sel_article_id, {"page_url": feed.page_url})
                    result.teasers_new, result.teasers_seen = self._store_teasers(
                        run, feed.page_url, page[0] if page else None, feed.teasers, now
                    )
            finally:
                run.close()
        return result

    def _runner(self, conn: Connection) -> Runner:
        # Statements SQLAlchemy is asked to log (echo, or its logger at INFO) go through Core.
        if self._sqlite_cache is not None and not self.engine.logger.isEnabledFor(logging.INFO):
            return SqliteRunner(conn, self._sqlite_cache)
        return CoreRunner(conn)

    def mark_removed(self, url: str, status: int) -> bool:
        """Mark an archived article that now answers 404/410 as removed (its content stays).

        Returns True when an article was marked now; False for other statuses, unknown URLs and
        articles already marked.
        """
        if status not in _REMOVED_STATUSES:
            return False
        a = m.articles
        with self.engine.begin() as conn:
            result = conn.execute(
                update(a)
                .where(a.c.url == normalize_url(url), a.c.removed_at.is_(None))
                .values(removed_at=utc_now_iso())
            )
        return result.rowcount > 0

    # -- queries -----------------------------------------------------------------------------

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        """Which of these (normalised) URLs are archived articles."""
        wanted = list(dict.fromkeys(urls))
        found: set[str] = set()
        with self.reader() as conn:
            for i in range(0, len(wanted), IN_CHUNK):
                found.update(conn.scalars(self._sel_known, {"urls": wanted[i : i + IN_CHUNK]}))
        return found

    def list_articles(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest articles (by ``published_at``), with their authors and teaser counts."""
        a, t = m.articles, m.teaser_sightings
        teaser_count = select(func.count()).where(t.c.page_article_id == a.c.id).scalar_subquery()
        stmt = (
            select(
                a.c.id,
                a.c.title,
                a.c.url,
                a.c.section,
                a.c.type,
                a.c.published_at,
                a.c.removed_at,
                teaser_count.label("teaser_count"),
            )
            .order_by(a.c.published_at.desc().nulls_last(), a.c.id.desc())
            .limit(limit)
        )
        with self.reader() as conn:
            rows = [dict(row) for row in conn.execute(stmt).mappings()]
            names: dict[int, list[str]] = {}
            if rows:
                aa, au = m.article_authors, m.authors
                author_rows = conn.execute(
                    select(aa.c.article_id, au.c.name)
                    .join(au, au.c.id == aa.c.author_id)
                    .where(aa.c.article_id.in_([r["id"] for r in rows]))
                    .order_by(aa.c.article_id, aa.c.position)
                )
                for article_id, name in author_rows:
                    names.setdefault(article_id, []).append(name)
        for row in rows:
            row["authors"] = ", ".join(names.get(row["id"], ()))
        return rows

    def count_teasers(self) -> int:
        """How many teaser rows (distinct page, target pairs) the archive holds."""
        with self.reader() as conn:
            return conn.scalar(select(func.count()).select_from(m.teaser_sightings)) or 0

    def read_capture_body(self, capture_id: int) -> bytes:
        """The body of a capture as it was received (decompressed)."""
        c = m.captures
        with self.reader() as conn:
            row = conn.execute(
                select(c.c.body, c.c.compression, c.c.dictionary_id).where(c.c.id == capture_id)
            ).first()
            if row is None:
                raise KeyError(f"no capture with id {capture_id}")
            return capture_body(conn, row, self.dictionaries)
