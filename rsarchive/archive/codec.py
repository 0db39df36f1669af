"""How capture bodies are stored: zstd with a dictionary trained on the archive's own pages, zstd
alone, or zlib where zstandard is missing; and reading them back, byte for byte.

Pages of one site share most of their bytes (the template, scripts, styles). A zstd dictionary
trained on the archive's earlier pages lets each new page be compressed against them: on
RebelMouse pages a capture takes about half of what zstd or gzip make of it alone (a page of a
template the dictionary has seen, a tenth). Dictionaries are versioned rows of
``capture_dictionaries`` (a new one is trained as the archive grows, so it follows the site's
templates), never changed or deleted; each capture names its own (``captures.dictionary_id``),
so every capture ever stored stays readable. ``sha256`` and ``size`` are of the body as received.
When the first dictionary comes, the pages stored before it (compressed alone) are compressed
again with it, in the same transaction.
"""

from __future__ import annotations

import logging
import threading
import zlib
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from . import models as m

try:
    import zstandard
except ImportError:  # zlib keeps the archive working; captures record which codec they used
    zstandard = None

logger = logging.getLogger(__name__)

# Level 1 alone: on the fixture pages (~70 KiB of HTML) 4.2:1 against level 3's 4.4:1, in about
# half the time inside the store loop. With a dictionary, level 3 costs what level 1 does
# (~0.15 ms a page: the matches come from the dictionary) and keeps ~15% fewer bytes.
_ZSTD_LEVEL = 1
_ZSTD_DICT_LEVEL = 3
# zstd's own default dictionary size (110 KiB): larger ones gain little on these pages.
DICTIONARY_SIZE = 112_640
# The first dictionary is trained once this many pages are stored without one; each next one
# once 7x the pages it was trained after have come since (64, 512, 4,096, ...), at most every
# RETRAIN_MAX pages: few versions while the archive is young, then the site's template changes
# are followed.
FIRST_TRAINING = 64
RETRAIN_MAX = 20_000
# fastCOVER with set parameters: ~0.3 s for 256 pages where zstd's own search for them takes
# ~1.4 s (on the writer, inside a page's transaction), for captures ~1% larger.
_COVER_K = 2048
_COVER_D = 6
# Training reads the newest pages: at most this many, and this many bytes (about a second).
_SAMPLES = 256
_SAMPLE_BYTES = 16 * 2**20


class MissingCodec(RuntimeError):
    """A capture was compressed with a codec this Python cannot read (zstd without zstandard)."""


class MissingDictionary(LookupError):
    """A capture needs a zstd dictionary that was not given (or the archive does not hold)."""


_codec_state = threading.local()  # a zstd compressor must not be shared between threads


def compress_body(body: bytes) -> tuple[bytes, str]:
    """``(compressed, codec)``: zstandard (level 1), or zlib where zstandard is not installed."""
    if zstandard is None:
        return zlib.compress(body, 6), "zlib"
    compressor = getattr(_codec_state, "zstd", None)
    if compressor is None:
        compressor = _codec_state.zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return compressor.compress(body), "zstd"


def decompress_body(data: bytes, compression: str, dictionary: Any = None) -> bytes:
    """The bytes ``compress_body`` (or a dictionary's compressor) was given.

    ``dictionary``: the ``zstandard.ZstdCompressionDict`` of the capture's ``dictionary_id``
    (see ``capture_body``); a body compressed with one cannot be read without it.
    """
    if compression == "zlib":
        return zlib.decompress(data)
    if compression == "zstd":
        if zstandard is None:
            raise MissingCodec("this capture is zstd-compressed: install the zstandard package")
        if dictionary is None and zstandard.get_frame_parameters(data).dict_id:
            raise MissingDictionary(
                "this capture was compressed with a dictionary: read it with "
                "rsarchive.archive.codec.capture_body (captures.dictionary_id)"
            )
        decompressor = (
            zstandard.ZstdDecompressor(dict_data=dictionary)
            if dictionary is not None
            else zstandard.ZstdDecompressor()
        )
        return decompressor.decompressobj().decompress(data)
    raise ValueError(f"unknown capture compression {compression!r}")


class Dictionaries:
    """An archive's dictionaries, each read from the database once (they never change)."""

    def __init__(self) -> None:
        self._by_id: dict[int, Any] = {}

    def get(self, conn: Connection, dictionary_id: int) -> Any:
        found = self._by_id.get(dictionary_id)
        if found is None:
            if zstandard is None:
                raise MissingCodec("this capture is zstd-compressed: install the zstandard package")
            d = m.capture_dictionaries
            data = conn.scalar(select(d.c.dictionary).where(d.c.id == dictionary_id))
            if data is None:
                raise MissingDictionary(f"the archive has no capture dictionary {dictionary_id}")
            found = self._by_id[dictionary_id] = zstandard.ZstdCompressionDict(data)
        return found

    def cached(self, dictionary_id: int) -> Any:
        return self._by_id.get(dictionary_id)

    def add(self, dictionary_id: int, dictionary: Any) -> None:
        self._by_id[dictionary_id] = dictionary


def capture_body(conn: Connection, row: Any, dictionaries: Dictionaries | None = None) -> bytes:
    """The body of a ``captures`` row (``body``, ``compression``, ``dictionary_id``) exactly as
    it was received; ``dictionaries``: a cache to keep between calls."""
    dictionary = None
    if row.dictionary_id is not None:
        dictionary = (dictionaries or Dictionaries()).get(conn, row.dictionary_id)
    return decompress_body(row.body, row.compression, dictionary)


# The write side's statements, built once: the SQLite runner caches compiled SQL by statement.
_d, _c = m.capture_dictionaries, m.captures
_SEL_NEWEST = select(_d.c.id, _d.c.last_capture_id).order_by(_d.c.id.desc()).limit(1)
_SEL_DICTIONARY = select(_d.c.dictionary).where(_d.c.id == bindparam("dictionary_id"))
# Counted on the index of feed_page_url (NULL: a page): no body is read.
_PAGES = select(func.count()).select_from(_c).where(_c.c.feed_page_url.is_(None))
_COUNT_AFTER = _PAGES.where(_c.c.id > bindparam("after"))
_COUNT_UPTO = _PAGES.where(_c.c.id <= bindparam("after"))
_SEL_SAMPLES = (
    select(_c.c.id, _c.c.body, _c.c.compression, _c.c.dictionary_id)
    .where(_c.c.feed_page_url.is_(None))
    .order_by(_c.c.id.desc())
    .limit(_SAMPLES)
)
_INS_DICTIONARY = insert(_d)
_UPD_BODY = (
    update(_c)
    .where(_c.c.id == bindparam("b_id"))
    .values(
        body=bindparam("b_body"), compression="zstd", dictionary_id=bindparam("b_dictionary_id")
    )
)


class PageCompressor:
    """The write side: compresses each new page with the archive's newest dictionary, and trains
    a new one when enough pages came since the last (see ``FIRST_TRAINING``).

    Runs on the writer (one thread), inside the page's transaction: a dictionary and the first
    capture compressed with it are committed together, or neither is (``reset`` after a
    rollback).
    """

    def __init__(self, dictionaries: Dictionaries, *, first_training: int = FIRST_TRAINING):
        self.dictionaries = dictionaries
        self.first_training = max(2, first_training)
        self.reset()

    def reset(self) -> None:
        """Read the state from the database again at the next page (after a rollback)."""
        self._loaded = False
        self._newest: tuple[int, Any] | None = None  # (id, ZstdCompressor)
        self._pages = 0  # page captures in the archive
        self._pages_since = 0  # of which stored since the newest dictionary's samples
        self._next_training = self.first_training

    def compress(
        self, run: Any, body: bytes, is_page: bool, now: str
    ) -> tuple[bytes, str, int | None]:
        """``(compressed, codec, dictionary id or None)`` for a new capture's body."""
        if zstandard is None or not is_page:
            return (*compress_body(body), None)
        if not self._loaded:
            self._load(run)
        if self._pages_since >= self._next_training:
            self._train(run, now)
        self._pages += 1
        self._pages_since += 1
        if self._newest is None:
            return (*compress_body(body), None)
        dictionary_id, compressor = self._newest
        return compressor.compress(body), "zstd", dictionary_id

    def _load(self, run: Any) -> None:
        newest = run.first(_SEL_NEWEST, {})
        after = 0
        if newest is not None:
            after = newest[1] or 0
            self._use(newest[0], self._fetch(run, newest[0]))
        self._pages_since = run.first(_COUNT_AFTER, {"after": after})[0]
        self._pages = self._pages_since + run.first(_COUNT_UPTO, {"after": after})[0]
        if newest is not None:
            self._next_training = self._interval(self._pages - self._pages_since)
        self._loaded = True

    def _interval(self, pages: int) -> int:
        """Pages to wait, after training on an archive of ``pages`` pages, for the next one."""
        return min(max(self.first_training, 7 * pages), RETRAIN_MAX)

    def _fetch(self, run: Any, dictionary_id: int) -> Any:
        cached = self.dictionaries.cached(dictionary_id)
        if cached is not None:
            return cached
        data = run.first(_SEL_DICTIONARY, {"dictionary_id": dictionary_id})[0]
        dictionary = zstandard.ZstdCompressionDict(data)
        self.dictionaries.add(dictionary_id, dictionary)
        return dictionary

    def _use(self, dictionary_id: int, dictionary: Any) -> None:
        compressor = zstandard.ZstdCompressor(level=_ZSTD_DICT_LEVEL, dict_data=dictionary)
        self._newest = (dictionary_id, compressor)

    def _train(self, run: Any, now: str) -> None:
        rows = run.rows(_SEL_SAMPLES, {})
        samples: list[bytes] = []
        alone: list[tuple[int, int, bytes]] = []  # (id, stored size, body) of pages without one
        total = 0
        for capture_id, data, compression, dictionary_id in rows:
            dictionary = self._fetch(run, dictionary_id) if dictionary_id is not None else None
            body = decompress_body(data, compression, dictionary)
            if samples and total + len(body) > _SAMPLE_BYTES:
                break
            samples.append(body)
            total += len(body)
            if dictionary_id is None:
                alone.append((capture_id, len(data), body))
        self._pages_since = 0
        self._next_training = self._interval(self._pages)
        try:
            dictionary = zstandard.train_dictionary(
                DICTIONARY_SIZE, samples, k=_COVER_K, d=_COVER_D
            )
        except zstandard.ZstdError as exc:
            # Too few or too small pages to learn from: try again after as many more.
            logger.info("no capture dictionary trained from %d pages: %s", len(samples), exc)
            return
        dictionary_id = run.insert(
            _INS_DICTIONARY,
            {
                "created_at": now,
                "samples": len(samples),
                "last_capture_id": rows[0][0] if rows else None,
                "zstd_id": dictionary.dict_id(),
                "dictionary": dictionary.as_bytes(),
            },
        )
        self.dictionaries.add(dictionary_id, dictionary)
        self._use(dictionary_id, dictionary)
        saved = self._recompress(run, alone)
        logger.info(
            "trained capture dictionary %d on %d pages (%d KiB); %d KiB saved on the pages "
            "stored before it",
            dictionary_id,
            len(samples),
            len(dictionary.as_bytes()) // 1024,
            saved // 1024,
        )

    def _recompress(self, run: Any, pages: list[tuple[int, int, bytes]]) -> int:
        """Compress again with the new dictionary the pages it was trained on that were stored
        without one (the archive's first pages: each ~5x its size with one); bytes saved.
        Their bodies are at hand already (read for training); ``sha256`` and ``size`` stay."""
        assert self._newest is not None
        dictionary_id, compressor = self._newest
        saved = 0
        for capture_id, stored, body in pages:
            data = compressor.compress(body)
            if len(data) < stored:
                run.execute(
                    _UPD_BODY,
                    {"b_id": capture_id, "b_body": data, "b_dictionary_id": dictionary_id},
                )
                saved += stored - len(data)
        return saved
