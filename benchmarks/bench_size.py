"""Archive bytes per page against a WARC.gz of the same responses.

Stores N replicated fixture pages (distinct URLs and post ids; avg ~70 KiB of HTML) through the
crawl's own split -> clean -> store path into a fresh SQLite archive, and writes the same HTTP
responses (status line, headers, body) as a gzipped WARC with warcio (one gzip member per record,
as crawlers write them). Prints bytes per page of both, their ratio (target: archive <= 0.75 x
WARC.gz), and where the archive's bytes go (SQLite's dbstat: tables and their indexes).

Then compacts the archive (``rsarchive db compact``: captures compressed again at a high level
with the newest dictionary, FTS optimize, VACUUM) and prints both sizes: as crawled, compacted.

    python benchmarks/bench_size.py [--pages 2000] [--no-dictionary] [--no-compact]

Replicated pages repeat eleven templates-with-articles, which flatters any compressor that sees
across pages (the capture dictionary); the second table measures a capture dictionary on pages it
has not seen (each fixture page compressed with a dictionary trained on the other ten).
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_pipeline import fixture_pages, replicate  # noqa: E402

from rsarchive.archive import Archive  # noqa: E402
from rsarchive.archive.codec import DICTIONARY_SIZE  # noqa: E402
from rsarchive.archive.compact import COMPACT_LEVEL  # noqa: E402
from rsarchive.pipelines.replay import Capture, ReplayCounts, replay  # noqa: E402

TARGET = 0.75
HEADERS = {"Server": "rebelmouse", "Cache-Control": "max-age=300", "Vary": "Accept-Encoding"}


def build_archive(db: Path, pages: int, dictionary: bool) -> int:
    captures = (
        Capture(url=url, status=200, fetched_at=f"2026-11-25T12:{i // 60 % 60:02d}:{i % 60:02d}Z",
                body=body, final_url=url, requested_url=url, content_type=ctype,
                headers=_json({"Content-Type": ctype, **HEADERS}))
        for i, (url, body, ctype) in enumerate(replicate(pages))
    )  # fmt: skip
    kwargs = {} if dictionary else {"dictionary_after": 10**9}
    with Archive(f"sqlite:///{db}", **kwargs) as archive:
        run_id = archive.start_run("bench", {})
        counts = replay(captures, archive, run_id, ReplayCounts(), jobs=1)
        archive.finish_run(run_id, status="finished", finish_reason="finished", stats={})
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts.pages_stored


def _json(value: dict) -> str:
    import json

    return json.dumps(value)


def write_warc(path: Path, pages: int) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, body, ctype in replicate(pages):
            http = StatusAndHeaders(
                "200 OK",
                [("Content-Type", ctype), *HEADERS.items(), ("Content-Length", str(len(body)))],
                protocol="HTTP/1.1",
            )
            record = writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=http
            )
            writer.write_record(record)


def breakdown(db: Path) -> list[tuple[str, int]]:
    """Bytes per table, its indexes counted with it (dbstat), largest first."""
    with sqlite3.connect(db) as conn:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master"))
        sizes: dict[str, int] = {}
        for name, pgsize in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            if table.startswith("articles_fts"):
                table = "articles_fts (full-text index)"
            elif table.startswith("teaser_"):  # what the teasers view reads
                table = "teasers (teaser_sightings + teaser_contents)"
            sizes[table] = sizes.get(table, 0) + pgsize
    return sorted(sizes.items(), key=lambda kv: -kv[1])


def unseen_pages() -> list[tuple[int, int, int, int]]:
    """(gzip, zstd alone, zstd with a dictionary of the other pages, the same at the level of
    ``db compact``) bytes of each fixture page."""
    import zstandard

    bodies = [body for _, body, _, _ in fixture_pages()]
    out = []
    for i, body in enumerate(bodies):
        others = [b for j, b in enumerate(bodies) if j != i]
        d = zstandard.train_dictionary(DICTIONARY_SIZE, others * 3)
        out.append((
            len(gzip.compress(body, 6)),
            len(zstandard.ZstdCompressor(level=1).compress(body)),
            len(zstandard.ZstdCompressor(level=3, dict_data=d).compress(body)),
            len(zstandard.ZstdCompressor(level=COMPACT_LEVEL, dict_data=d).compress(body)),
        ))  # fmt: skip
    return out


def compacted(db: Path) -> tuple[float, str]:
    """Run ``rsarchive db compact`` on the archive: (CPU seconds, its summary line)."""
    import contextlib
    import time

    from rsarchive.cli import main as rsarchive_main

    out = io.StringIO()
    t0 = time.process_time()
    with contextlib.redirect_stdout(out):
        code = rsarchive_main(["db", "compact", "--db", str(db)])
    assert code == 0, out.getvalue()
    return time.process_time() - t0, out.getvalue().strip()


def file_bytes(tmp: str) -> int:
    return sum(p.stat().st_size for p in Path(tmp).glob("archive.db*"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--no-dictionary", action="store_true", help="captures without dictionaries")
    ap.add_argument("--no-compact", action="store_true", help="skip `rsarchive db compact`")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        db, warc = Path(tmp) / "archive.db", Path(tmp) / "pages.warc.gz"
        stored = build_archive(db, args.pages, not args.no_dictionary)
        write_warc(warc, args.pages)
        crawled_bytes, warc_bytes = file_bytes(tmp), warc.stat().st_size
        parts = dict(breakdown(db))
        compact_bytes, compact_parts, summary = None, {}, ""
        if not args.no_compact:
            seconds, summary = compacted(db)
            summary = f"{summary}\n(compact: {seconds / args.pages * 1000:.1f} ms CPU a page)"
            compact_bytes, compact_parts = file_bytes(tmp), dict(breakdown(db))
    raw = sum(len(body) for _, body, _ in replicate(args.pages))
    n = args.pages
    print(f"{n} replicated fixture pages ({stored} stored), {raw / n / 1024:.1f} KiB of HTML each; "
          f"capture dictionary: {'off' if args.no_dictionary else 'on'}\n")  # fmt: skip
    print("| what | bytes per page | vs WARC.gz |")
    print("|---|---:|---:|")
    print(f"| WARC.gz (warcio, gzip per record) | {warc_bytes / n:,.0f} | 1.00 |")
    print(f"| archive as crawled (SQLite file: captures, articles, teasers, FTS, revisions) "
          f"| {crawled_bytes / n:,.0f} | **{crawled_bytes / warc_bytes:.2f}** |")  # fmt: skip
    if compact_bytes is not None:
        print(f"| archive after `rsarchive db compact` | {compact_bytes / n:,.0f} "
              f"| **{compact_bytes / warc_bytes:.2f}** |")  # fmt: skip
    print("\n| where the archive's bytes go (per page) | as crawled | compacted |")
    print("|---|---:|---:|")
    for name, size in parts.items():
        after = compact_parts.get(name)
        print(f"| {name} | {size / n:,.0f} | {'' if after is None else f'{after / n:,.0f}'} |")
    best = min(crawled_bytes, compact_bytes or crawled_bytes)
    print(
        f"\narchive vs WARC.gz: {crawled_bytes / warc_bytes:.2f} as crawled, "
        f"{best / warc_bytes:.2f} compacted (target <= {TARGET}); "
        f"load average {' '.join(os.getloadavg().__str__().strip('()').split(', '))}"
    )
    if summary:
        print(summary)
    rows = unseen_pages()
    k = len(rows)
    gz, z1, zd, zc = (sum(r[i] for r in rows) / k for i in range(4))
    print("\n| one fixture page, compressed (11 distinct pages; mean bytes) | bytes | vs gzip |")
    print("|---|---:|---:|")
    print(f"| gzip -6 (what a WARC.gz record holds) | {gz:,.0f} | 1.00 |")
    print(f"| zstd -1 alone | {z1:,.0f} | {z1 / gz:.2f} |")
    print(f"| zstd -3, dictionary trained on the other 10 pages | {zd:,.0f} | {zd / gz:.2f} |")
    compact = f"zstd -{COMPACT_LEVEL}, the same dictionary (`db compact`)"
    print(f"| {compact} | {zc:,.0f} | {zc / gz:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
