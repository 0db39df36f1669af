"""Pages/s of 1, 2 and 4 workers on one shared frontier, within the per-host politeness limits.

A loopback site of N fixture-shaped article pages (listed in one sitemap) answers every request
``--latency`` seconds late, as a real site far away does. Each row starts that many
`rsarchive crawl sitemap --frontier ...` workers into a fresh PostgreSQL database (throwaway
Redis and PostgreSQL servers on 127.0.0.1, as the tests start them) and waits for all of them.
The per-host limits (``--slots`` requests at once, ``--delay`` seconds between starts) hold for
all workers together; the site reports the most requests it ever had at once.

    python benchmarks/bench_frontier.py [--pages 400] [--latency 0.2] [--workers 1,2,4]

``pages/s`` counts from the first article request the site saw to the last answer (no process
start-up); ``wall s`` is from the first start to the last exit. The machine is shared: compare
the rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pg import postgres_server  # noqa: E402
from redis_server import redis_server  # noqa: E402
from replica_site import replica_site  # noqa: E402


def crawl(n: int, db: str, site_url: str, frontier: str, args: argparse.Namespace) -> float:
    """``n`` workers until all exit; the wall time in seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    logs = Path(tempfile.mkdtemp(prefix="bench-frontier-"))
    started = time.monotonic()
    workers = []
    for i in range(n):
        cmd = [
            sys.executable, "-m", "rsarchive.cli", "crawl", "sitemap", "--db", db,
            "--frontier", frontier, "--log-dir", str(logs),
            "-s", f"RSARCHIVE_SITE_URL={site_url}", "-s", f"RSARCHIVE_WORKER=w{i}",
            "-s", f"CONCURRENT_REQUESTS_PER_DOMAIN={args.slots}",
            "-s", f"CONCURRENT_REQUESTS={args.per_worker}",
            "-s", f"DOWNLOAD_DELAY={args.delay}", "-s", "AUTOTHROTTLE_ENABLED=0",
            "-s", "RETRY_TIMES=0", "-s", "LOG_LEVEL=WARNING",
        ]  # fmt: skip
        workers.append(
            subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    for proc in workers:
        out, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed ({proc.returncode}): {err or out}")
    return time.monotonic() - started


def stored(db: str) -> int:
    from sqlalchemy import text

    from rsarchive.archive import make_engine

    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM captures")).scalar_one()
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per answer")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--slots", type=int, default=16, help="requests at once, per host")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between starts")
    parser.add_argument("--per-worker", type=int, default=8, help="CONCURRENT_REQUESTS")
    args = parser.parse_args()

    rows = []
    with postgres_server() as pg, redis_server() as redis, replica_site(args.pages) as site:
        site.latency = args.latency
        for n in (int(w) for w in args.workers.split(",")):
            site.log.clear()
            site.max_active = 0
            db = pg.new_database()
            wall = crawl(n, db, site.url, redis.url, args)
            pages = [(a, d) for path, a, d in site.log if path in site.pages]
            span = max(d for _, d in pages) - min(a for a, _ in pages)
            rows.append((n, stored(db), len(pages), wall, span, site.max_active))
    print(
        f"{args.pages} pages, {args.latency * 1000:.0f} ms a page, per host: {args.slots} at "
        f"once, {args.delay:g} s apart; {args.per_worker} requests at once per worker\n"
    )
    print(f"{'workers':>7} {'stored':>6} {'fetched':>7} {'wall s':>7} {'pages/s':>8} "
          f"{'speed-up':>8} {'most at once':>12}")  # fmt: skip
    base = None
    for n, count, fetched, wall, span, most in rows:
        rate = count / span
        base = base or rate
        print(
            f"{n:>7} {count:>6} {fetched:>7} {wall:>7.1f} {rate:>8.1f} {rate / base:>7.2f}x "
            f"{most:>12}"
        )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
