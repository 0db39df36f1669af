"""The archive's captures as a WARC 1.1 file (ISO 28500), written with warcio.

One ``warcinfo`` record (rsarchive's version, the User-Agent, the robots policy), then per
capture, in fetch order, a ``response`` record (the status line and headers as received, the
body as stored) and the ``request`` record that asked for it. A body already written under any
URL is written again as a ``revisit`` record (identical-payload-digest profile) that points at
the first one. Every record is its own gzip member, as replay tools expect.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from io import BytesIO
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, select
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from rsarchive import __version__
from rsarchive.archive import models as m
from rsarchive.archive.codec import Dictionaries, capture_body
from rsarchive.archive.engine import READ_ONLY
from rsarchive.interop import FEED_PAGE_URL, FEED_POSITION, FEED_REPEATS, REQUESTED_URL

_BATCH = 200  # captures read per query: bodies are decompressed one at a time

# The first bytes of a body that still carries a content coding (RFC 9110 8.4.1).
_MAGIC = {"gzip": b"\x1f\x8b", "x-gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}


@dataclass
class WarcExport:
    """What ``write_warc`` wrote."""

    captures: int = 0
    responses: int = 0
    revisits: int = 0
    records: int = 0
    captures_bytes: int = 0  # the bodies as the archive keeps them (compressed)
    bodies_bytes: int = 0  # ... and as received


class ArchiveSource:
    """What ``rsarchive.pipelines.reparse`` selects captures from (``reader()``), on a read-only
    engine: export picks its captures exactly as ``reparse --into`` does."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine.execution_options(**READ_ONLY)

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            yield conn


def select_captures(engine: Engine, since: str | None = None, url: str | None = None) -> list[int]:
    """Capture ids in fetch order (fetched at or after ``since``; of ``url`` and its feed)."""
    from rsarchive.pipelines.reparse import _selection

    return _selection(ArchiveSource(engine), since, url)  # type: ignore[arg-type]


def _still_encoded(coding: str, body: bytes) -> bool:
    """Whether ``body`` still carries ``coding`` (the last one a Content-Encoding lists).

    Scrapy decodes the codings it knows and drops the header only when it decoded them all, so
    a coding it kept is normally still on the body; the check makes sure of it.
    """
    coding = coding.strip().lower()
    if coding in _MAGIC:
        return body.startswith(_MAGIC[coding])
    if coding == "deflate":  # a zlib stream: CMF/FLG check bits (RFC 1950)
        return len(body) > 1 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
    if coding == "identity":
        return False
    if coding == "br":
        try:
            import brotli
        except ImportError:  # not decodable here: Scrapy could not have decoded it either
            return True
        try:  # no magic number: a body that decodes carries it (Brotli and brotlipy alike)
            brotli.decompress(body)
        except Exception:
            return False
        return True
    return True  # a coding we do not know: keep what the server said


def http_headers(headers: dict[str, str], body: bytes) -> list[tuple[str, str]]:
    """The response headers as received, minus what the stored body no longer has.

    The body is stored whole and decoded: a ``Transfer-Encoding`` (chunked) is gone, and so is a
    ``Content-Encoding`` Scrapy undid; a ``Content-Length`` says the stored length. None is
    added where the server sent none: the WARC record's own length frames the message.
    """
    out: list[tuple[str, str]] = []
    for name, value in headers.items():
        low = name.lower()
        if low == "transfer-encoding":
            continue
        if low == "content-encoding":
            codings = [c for c in value.split(",") if c.strip()]
            if not codings or not _still_encoded(codings[-1], body):
                continue
        if low == "content-length":
            value = str(len(body))
        out.append((name, value))
    return out


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _request_headers(url: str, user_agent: str) -> StatusAndHeaders:
    """The GET rsarchive sends (the request itself is not kept: its method, target, Host and
    User-Agent are known; conditional headers are not recorded)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return StatusAndHeaders(
        f"GET {target} HTTP/1.1",
        [("Host", parts.netloc), ("User-Agent", user_agent)],
        is_http_request=True,
    )


def _own_headers(row: Any, uri: str) -> dict[str, str]:
    """Our WARC-X-Rsarchive-* headers: what re-importing this capture needs beyond HTTP."""
    own: dict[str, str] = {}
    if row.requested_url and row.requested_url != uri:
        own[REQUESTED_URL] = row.requested_url
    if row.feed_page_url is not None:
        own[FEED_PAGE_URL] = row.feed_page_url
        own[FEED_POSITION] = str(row.feed_position or 0)
        if row.feed_repeats:
            own[FEED_REPEATS] = json.dumps(json.loads(row.feed_repeats), separators=(",", ":"))
    return own


def warcinfo_fields(user_agent: str, site_url: str, robots: bool) -> dict[str, str]:
    """The ``warcinfo`` record's fields (WARC 1.1 annex C names)."""
    from importlib.metadata import version

    return {
        "software": f"rsarchive/{__version__} (warcio/{version('warcio')})",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/"
        "warc-format/warc-1.1/",
        "http-header-user-agent": user_agent,
        "robots": "obey" if robots else "ignore",
        "isPartOf": site_url,
        "description": "captures of rsarchive's archive: the raw responses each article, "
        "listing and load-more answer was read from",
    }


def write_warc(
    engine: Engine,
    ids: Sequence[int],
    out: BinaryIO,
    *,
    filename: str,
    info: dict[str, str],
) -> WarcExport:
    """Write the captures ``ids`` (in that order) to ``out`` as a gzipped WARC 1.1 file."""
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    writer.write_record(writer.create_warcinfo_record(filename, info))
    result = WarcExport(records=1)
    user_agent = info.get("http-header-user-agent", f"rsarchive/{__version__}")
    # sha256 of a body written -> (its WARC-Payload-Digest, target URI, date), for revisits.
    written: dict[str, tuple[str, str, str]] = {}
    c = m.captures
    reader = engine.execution_options(**READ_ONLY)
    dictionaries = Dictionaries()  # the zstd dictionaries bodies were compressed with, read once
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        with reader.connect() as conn:
            rows = {row.id: row for row in conn.execute(select(c).where(c.c.id.in_(chunk)))}
            bodies: dict[int, bytes | zlib.error] = {}
            for capture_id, row in rows.items():
                try:
                    bodies[capture_id] = capture_body(conn, row, dictionaries)
                except zlib.error as exc:
                    bodies[capture_id] = exc
        for capture_id in chunk:
            row = rows[capture_id]
            body = bodies[capture_id]
            if isinstance(body, zlib.error):
                raise ValueError(f"capture {row.id} ({row.url}): damaged body: {body}") from body
            uri = row.final_url or row.url
            warc_headers = {"WARC-Date": row.fetched_at, **_own_headers(row, uri)}
            response_headers = StatusAndHeaders(
                _status_line(row.status),
                http_headers(json.loads(row.headers or "{}"), body),
                protocol="HTTP/1.1",
            )
            first = written.get(row.sha256)
            if first is not None:
                record = writer.create_revisit_record(
                    uri,
                    first[0],
                    first[1],
                    first[2],
                    http_headers=response_headers,
                    warc_headers_dict=warc_headers,
                )
                result.revisits += 1
            else:
                record = writer.create_warc_record(
                    uri,
                    "response",
                    payload=BytesIO(body),
                    length=len(body),
                    http_headers=response_headers,
                    warc_headers_dict=warc_headers,
                )
                digest = record.rec_headers.get_header("WARC-Payload-Digest")
                written[row.sha256] = (digest, uri, row.fetched_at)
                result.responses += 1
            request = writer.create_warc_record(
                uri, "request", http_headers=_request_headers(uri, user_agent)
            )
            writer.write_request_response_pair(request, record)
            result.records += 2
            result.captures += 1
            result.captures_bytes += len(row.body)
            result.bodies_bytes += row.size
    return result
