"""A bounded soak of the archive (T53-T54): the same crawl again and again into one SQLite file,
each round re-fetching every page it archived before and adding a few new ones.

What it shows: the database grows with new pages only (an unchanged re-fetch adds no capture,
no revision, no teaser row), and a crawl's peak memory does not grow with the archive.

    python benchmarks/soak.py [--rounds 8] [--pages 500] [--new 100]

One crawl process per round (`bench_crawl.py --child archive`: the `article` spider, pages
answered from memory). Compare the columns down the rounds, not with another machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def crawl(pages: int, db: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, str(HERE / "bench_crawl.py"), "--child", "archive",
         "--pages", str(pages), "--db", str(db)],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{HERE}:{ROOT}"},
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        out = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("articles", "captures", "revisions", "teasers", "crawl_runs")
        }
        out["integrity_ok"] = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--pages", type=int, default=500, help="pages of the first round")
    ap.add_argument("--new", type=int, default=100, help="new pages each later round")
    args = ap.parse_args()
    print(f"{args.rounds} rounds: {args.pages} pages, then +{args.new} new a round; every round "
          "re-fetches all the pages before it\n")  # fmt: skip
    print("| round | pages | articles | captures | revisions | DB MiB | KiB/article | "
          "peak RSS MiB | less pages served | pages/s | integrity |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    sys.path.insert(0, str(HERE))
    from bench_pipeline import replicate

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "soak.db"
        for round_ in range(1, args.rounds + 1):
            pages = args.pages + (round_ - 1) * args.new
            result = crawl(pages, db)
            rows = counts(db)
            size = db.stat().st_size / 2**20
            rss = (result["maxrss"] or 0) / 2**20
            # The crawl holds every page it serves in memory (bench_crawl's middleware).
            served = sum(len(body) for _, body, _ in replicate(pages)) / 2**20
            rate = result["items"] / result["seconds"]
            print(
                f"| {round_} | {pages:,} | {rows['articles']:,} | {rows['captures']:,} | "
                f"{rows['revisions']:,} | {size:,.1f} | {size * 1024 / rows['articles']:,.1f} | "
                f"{rss:,.0f} | {rss - served:,.0f} | {rate:,.0f} | "
                f"{'ok' if rows['integrity_ok'] else 'FAILED'} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
