"""``rsarchive import``: WARC / WARC.gz / WACZ files (any tool's) into the archive.

A thin producer of captures: the response (and revisit) records of the configured site become
capture rows in a scratch archive, and ``rsarchive.pipelines.reparse.reparse`` replays them, in
fetch order, into the real one through the crawl's own split -> clean -> store steps, as
``rsarchive reparse --into`` does. Captures the archive already holds (same URL, same body) are
left out, so importing a file twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import IO, Any

from sqlalchemy import insert, select
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader, ChunkedDataException, ChunkedDataReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from rsarchive.archive import Archive
from rsarchive.archive import models as m
from rsarchive.archive.engine import sqlite_url
from rsarchive.archive.store import compress_body
from rsarchive.interop import FEED_PAGE_URL, FEED_POSITION, FEED_REPEATS, REQUESTED_URL
from rsarchive.pipelines.reparse import ReparseResult, reparse
from rsarchive.urls import normalize_url, same_site

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_READ = 64 * 1024
# What reading a damaged file raises, from warcio, zlib/gzip and the zip layer.
_DAMAGED = (
    ArchiveLoadFailed,
    StatusAndHeadersParserException,
    EOFError,
    OSError,
    zlib.error,
    zipfile.BadZipFile,
    ValueError,
)


class DamagedFile(Exception):
    """A truncated or corrupt file: import stops at the bad record (what came before is kept)."""


class _Skip(Exception):
    """A record that is not imported; ``key`` counts it, ``warning`` (if any) is logged."""

    def __init__(self, key: str, warning: str | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.warning = warning


@dataclass
class ImportResult:
    files: int = 0
    records: int = 0  # response and revisit records read
    staged: int = 0  # captures new to the archive, replayed
    already: int = 0  # captures the archive (or this import) held already
    skipped: Counter[str] = field(default_factory=Counter)
    replay: ReparseResult | None = None


def _warc_date(value: str | None) -> str:
    """A WARC-Date (W3C ISO 8601, WARC 1.1 may add fractions) as the archive writes times."""
    if not value:
        raise _Skip("no_date")
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Skip("no_date") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _joined(record: ArcWarcRecord) -> dict[str, str]:
    """The HTTP headers as a capture keeps them: repeated ones joined (as the crawl does)."""
    out: dict[str, str] = {}
    for name, value in record.http_headers.headers:
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _get(headers: dict[str, str], name: str) -> str | None:
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


def _drop(headers: dict[str, str], name: str) -> None:
    for key in [k for k in headers if k.lower() == name.lower()]:
        del headers[key]


class Importer:
    """Stages the records of WARC / WACZ files, then replays them into ``target``."""

    def __init__(
        self,
        target: Archive,
        site_url: str,
        max_size: int,
        warn: Callable[[str], None],
        workdir: str | None = None,
    ) -> None:
        self.target = target
        self.site_url = site_url
        self.max_size = max_size
        self.warn = warn
        self.result = ImportResult()
        self._tmp = tempfile.TemporaryDirectory(prefix="rsarchive-import-", dir=workdir)
        self.staging = Archive(sqlite_url(Path(self._tmp.name) / "staging.db"))
        self._staged: dict[tuple[str, str], tuple[Archive, int]] = {}
        # WARC-Payload-Digest -> where that body is, for the revisit records that refer to it.
        self._digests: dict[str, tuple[Archive, int]] = {}

    def close(self) -> None:
        self.staging.close()
        self._tmp.cleanup()

    # -- reading ---------------------------------------------------------------------------------

    def read(self, path: Path) -> None:
        """Stage the records of one WARC, WARC.gz or WACZ file; raises ``DamagedFile`` at the
        first record that cannot be read (the records before it stay staged)."""
        self.result.files += 1
        try:
            is_zip = zipfile.is_zipfile(path)
        except OSError as exc:
            raise DamagedFile(f"{path}: cannot read: {exc.strerror}") from None
        if not is_zip:
            with path.open("rb") as fh:
                self._read_stream(fh, str(path))
            return
        try:
            with zipfile.ZipFile(path) as wacz:
                members = sorted(
                    n
                    for n in wacz.namelist()
                    if n.startswith("archive/") and n.endswith((".warc", ".warc.gz"))
                )
                if not members:
                    raise DamagedFile(f"{path}: a zip file without archive/*.warc(.gz): not a WACZ")
                for name in members:
                    with wacz.open(name) as fh:
                        self._read_stream(fh, f"{path}:{name}")
        except zipfile.BadZipFile as exc:
            raise DamagedFile(f"{path}: damaged WACZ: {exc}") from None

    def _read_stream(self, fh: IO[bytes], name: str) -> None:
        records = ArchiveIterator(fh)
        try:
            for record in records:
                if record.format != "warc":  # warcio reads any text line as an ARC header
                    raise ArchiveLoadFailed("not a WARC record")
                if record.rec_type not in ("response", "revisit"):
                    continue
                self.result.records += 1
                offset = records.offset
                try:
                    self._stage(record, name, offset)
                except _Skip as skip:
                    self.result.skipped[skip.key] += 1
                    if skip.warning:
                        self.warn(f"{name}: record at offset {offset}: {skip.warning}")
        except _DAMAGED as exc:
            # warcio quotes the unreadable bytes after the reason: the reason is enough.
            reason = str(exc).split(", first line")[0].strip().splitlines() or [type(exc).__name__]
            raise DamagedFile(
                f"{name}: corrupt or truncated record at offset {records.offset}: {reason[0][:200]}"
            ) from None

    def _stage(self, record: ArcWarcRecord, name: str, offset: int) -> None:
        warc = record.rec_headers
        uri = (warc.get_header("WARC-Target-URI") or "").strip().strip("<>")
        if not uri or not same_site(uri, self.site_url):
            raise _Skip("other_host")
        if record.http_headers is None and record.rec_type == "response":
            raise _Skip("not_http")
        fetched_at = _warc_date(warc.get_header("WARC-Date"))
        feed_page_url = warc.get_header(FEED_PAGE_URL)
        if record.rec_type == "revisit":
            status, headers, body = self._revisited(record)
        else:
            if record.length is not None and record.length > self.max_size:
                raise _Skip(
                    "too_large",
                    f"{uri}: {record.length:,} bytes, over DOWNLOAD_MAXSIZE "
                    f"({self.max_size:,}): skipped",
                )
            status, headers, body = self._response(record, uri)
        if status != 200:
            raise _Skip(f"http_{status}")
        content_type = _get(headers, "Content-Type")
        mime = (content_type or "").split(";")[0].strip().lower()
        # No Content-Type at all: an HTML document still says so in its first bytes.
        sniffed = body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))
        if feed_page_url is None and mime not in _HTML_TYPES and (mime or not sniffed):
            raise _Skip("not_html")
        digest = warc.get_header("WARC-Payload-Digest")
        key = (normalize_url(uri), hashlib.sha256(body).hexdigest())
        held = self._staged.get(key) or self._held(key)
        if held is not None:
            self.result.already += 1
            if digest:
                self._digests.setdefault(digest.lower(), held)
            return
        row = {
            "url": key[0],
            "final_url": uri,
            "requested_url": warc.get_header(REQUESTED_URL) or uri,
            "status": status,
            "fetched_at": fetched_at,
            "content_type": content_type,
            "headers": json.dumps(headers, ensure_ascii=False),
            "sha256": key[1],
            "size": len(body),
            "feed_page_url": feed_page_url,
            "feed_position": int(warc.get_header(FEED_POSITION) or 0) if feed_page_url else None,
            "feed_repeats": warc.get_header(FEED_REPEATS),
        }
        row["body"], row["compression"] = compress_body(body)
        with self.staging.engine.begin() as conn:
            capture_id = conn.execute(insert(m.captures).values(**row)).inserted_primary_key[0]
        self._staged[key] = (self.staging, capture_id)
        if digest:
            self._digests.setdefault(digest.lower(), (self.staging, capture_id))
        self.result.staged += 1

    def _held(self, key: tuple[str, str]) -> tuple[Archive, int] | None:
        c = m.captures
        with self.target.reader() as conn:
            found = conn.scalar(select(c.c.id).where(c.c.url == key[0], c.c.sha256 == key[1]))
        return (self.target, found) if found is not None else None

    def _response(self, record: ArcWarcRecord, uri: str) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and the decoded body of a response record (bounded in size)."""
        raw = record.raw_stream.read(self.max_size + 1)
        if getattr(record.raw_stream, "limit", 0) > 0 and not record.raw_stream.read(1):
            # The record says it is longer than what the file holds.
            raise EOFError("the record ends before its Content-Length")
        headers = _joined(record)
        coding = (_get(headers, "Content-Encoding") or "").strip().lower()
        chunked = (_get(headers, "Transfer-Encoding") or "").strip().lower() == "chunked"
        if coding in ("", "identity"):
            coding = ""
        elif coding not in BufferedReader.get_supported_decompressors():
            raise _Skip("unknown_encoding", f"{uri}: body in an unknown coding {coding!r}: skipped")
        stream: Any = BytesIO(raw)
        if chunked:
            stream = ChunkedDataReader(stream, decomp_type=coding or None)
        elif coding:
            stream = BufferedReader(stream, decomp_type=coding)
        body = bytearray()
        try:
            while chunk := stream.read(_READ):
                body += chunk
                if len(body) > self.max_size:
                    raise _Skip(
                        "too_large",
                        f"{uri}: decodes to more than DOWNLOAD_MAXSIZE ({self.max_size:,} "
                        "bytes; a decompression bomb?): skipped",
                    )
        except (zlib.error, ChunkedDataException, OSError, ValueError) as exc:
            raise _Skip("undecodable", f"{uri}: cannot decode the body: {exc}") from None
        # The body is kept decoded and whole, as Scrapy hands it over.
        if chunked:
            _drop(headers, "Transfer-Encoding")
        if coding:
            _drop(headers, "Content-Encoding")
        status = int(record.http_headers.get_statuscode() or 0)
        return status, headers, bytes(body)

    def _revisited(self, record: ArcWarcRecord) -> tuple[int, dict[str, str], bytes]:
        """A revisit record: its own status and headers, the body of the record it refers to."""
        profile = record.rec_headers.get_header("WARC-Profile") or ""
        if "identical-payload-digest" not in profile:
            raise _Skip("revisit_not_modified")
        digest = (record.rec_headers.get_header("WARC-Payload-Digest") or "").lower()
        found = self._digests.get(digest)
        if found is None:
            raise _Skip("revisit_unresolved")
        where, capture_id = found
        body = where.read_capture_body(capture_id)
        if record.http_headers is None:  # older revisits keep no HTTP headers: the original's
            c = m.captures
            with where.reader() as conn:
                row = conn.execute(
                    select(c.c.status, c.c.headers).where(c.c.id == capture_id)
                ).one()
            return row.status, json.loads(row.headers or "{}"), body
        headers = _joined(record)
        _drop(headers, "Transfer-Encoding")
        _drop(headers, "Content-Encoding")
        return int(record.http_headers.get_statuscode() or 0), headers, body

    # -- replaying -------------------------------------------------------------------------------

    def replay(self, files: list[str], jobs: int = 1) -> ReparseResult:
        """Replay the staged captures into the archive, oldest first (``reparse``), parsing on
        ``jobs`` processes (the result is the same for any number)."""
        self.result.replay = reparse(
            self.staging,
            self.target,
            jobs=jobs,
            run_name="import",
            run_args={"files": files, "records": self.result.records},
        )
        return self.result.replay
