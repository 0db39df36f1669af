"""WARC export size and `rsarchive import` speed, next to `rsarchive reparse --into`.

Builds an archive of N replicated fixture pages (as bench_pipeline.py does, through the real
split -> clean -> store steps), then, in one process:

  - exports its captures as WARC (warcio, per-record gzip) and compares the file's size with
    what the archive keeps (the compressed ``captures.body``) and with the bodies as received;
  - rebuilds it with ``reparse --into`` (captures -> fresh archive) and with export + ``import``
    (WARC -> fresh archive, with --jobs 1 and 2), pages/s of each, and checks they all give
    the same rows.

    python benchmarks/bench_webarchive.py [--pages 1000]
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_pipeline import SITE, bench_pipeline, replicate, rss_mib  # noqa: E402
from test_fidelity import content_rows  # noqa: E402

from rsarchive.archive import Archive  # noqa: E402
from rsarchive.archive.engine import sqlite_url  # noqa: E402
from rsarchive.interop.importer import Importer  # noqa: E402
from rsarchive.interop.warc import select_captures, warcinfo_fields, write_warc  # noqa: E402
from rsarchive.pipelines.reparse import reparse  # noqa: E402
from rsarchive.settings import DOWNLOAD_MAXSIZE, USER_AGENT  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # layout_drift lines of the replicated pages
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "source.db"
        bench_pipeline(list(replicate(args.pages)), source)
        with sqlite3.connect(source) as conn:
            captures, raw, kept = conn.execute(
                "SELECT count(*), sum(size), sum(length(body)) FROM captures"
            ).fetchone()

        warc = work / "rs.warc.gz"
        with Archive(sqlite_url(source)) as archive:
            t0 = time.perf_counter()
            ids = select_captures(archive.engine)
            with warc.open("wb") as out:
                info = warcinfo_fields(USER_AGENT, SITE, True)
                write_warc(archive.engine, ids, out, filename=warc.name, info=info)
            export_s = time.perf_counter() - t0

            rebuilt = work / "rebuilt.db"
            with Archive(sqlite_url(rebuilt)) as target:
                t0 = time.perf_counter()
                reparse(archive, target)
                reparse_s = time.perf_counter() - t0

        imports = {}
        for jobs in (1, 2):
            imported = work / f"imported-{jobs}.db"
            with Archive(sqlite_url(imported)) as target:
                t0 = time.perf_counter()
                job = Importer(target, SITE, DOWNLOAD_MAXSIZE, print)
                try:
                    job.read(warc)
                    read_s = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    job.replay([str(warc)], jobs=jobs)
                    replay_s = time.perf_counter() - t1
                finally:
                    job.close()
                imports[jobs] = (time.perf_counter() - t0, read_s, replay_s, rss_mib())
        import_s, read_s, _, _ = imports[1]

        same = all(
            content_rows(rebuilt) == content_rows(work / f"imported-{jobs}.db") for jobs in (1, 2)
        )
        size = warc.stat().st_size
        print(f"{captures:,} captures ({args.pages:,} replicated fixture pages)\n")
        print("| bytes | total | per capture | vs captures.body |")
        print("|---|---:|---:|---:|")
        print(f"| bodies as received (captures.size) | {raw:,} | {raw // captures:,} | "
              f"{raw / kept:.2f} |")  # fmt: skip
        print(f"| archive keeps (captures.body, zstd) | {kept:,} | {kept // captures:,} | 1.00 |")
        print(f"| WARC export (gzip per record, + request records) | {size:,} | "
              f"{size // captures:,} | {size / kept:.2f} |\n")  # fmt: skip
        print("| path | seconds | pages/s |")
        print("|---|---:|---:|")
        print(f"| export WARC | {export_s:.2f} | {captures / export_s:,.0f} |")
        print(f"| reparse --into (captures -> fresh archive) | {reparse_s:.2f} | "
              f"{captures / reparse_s:,.0f} |")  # fmt: skip
        print(f"| import (WARC -> fresh archive) | {import_s:.2f} | {captures / import_s:,.0f} |")
        print(f"|   of which reading + staging the WARC | {read_s:.2f} | "
              f"{captures / read_s:,.0f} |")  # fmt: skip
        print(f"\nimport gives the rows of reparse --into: {'yes' if same else 'NO'}")
        print("\n| import --jobs | seconds (read + replay) | replay pages/s | resident MiB after |")
        print("|---:|---:|---:|---:|")
        for jobs, (total_s, read_s, replay_s, rss) in imports.items():
            print(f"| {jobs} | {total_s:.2f} ({read_s:.2f} + {replay_s:.2f}) "
                  f"| {captures / replay_s:,.0f} | {rss:.0f} |")  # fmt: skip
        speedup = imports[1][2] / imports[2][2]
        print(f"\nimport's replay, --jobs 2 vs --jobs 1: {speedup:.2f} (target >= 1.7)")


if __name__ == "__main__":
    main()
