"""Re-reads on several cores: `rsarchive reparse --jobs 2` against `--jobs 1`, in pages/s.

Stores N replicated fixture pages (distinct URLs and post ids) into a SQLite archive once, then
re-reads its captures into a fresh archive (``reparse --into``: every capture parsed, split,
cleaned and stored again) with one job and with two, alternating, several runs:

    python benchmarks/bench_reparse.py [--pages 2000] [--runs 3]

Each run's speed-up compares the pair measured back to back (the machine is shared).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_pipeline import bench_parse, replicate, rss_mib  # noqa: E402

from rsarchive.archive import Archive  # noqa: E402
from rsarchive.pipelines.reparse import reparse  # noqa: E402
from rsarchive.pipelines.replay import Capture, ReplayCounts, replay  # noqa: E402

TARGET = 1.7


def build(db: Path, pages: int) -> None:
    """The archive a crawl of the replicated pages leaves (through the same replay path)."""
    captures = (
        Capture(url=url, status=200, fetched_at=f"2026-11-25T12:00:{i % 60:02d}Z", body=body,
                final_url=url, requested_url=url, content_type=ctype,
                headers=f'{{"Content-Type": "{ctype}"}}')
        for i, (url, body, ctype) in enumerate(replicate(pages))
    )  # fmt: skip
    with Archive(f"sqlite:///{db}") as archive:
        run_id = archive.start_run("bench", {})
        replay(captures, archive, run_id, ReplayCounts(), jobs=os.cpu_count() or 1)
        archive.finish_run(run_id, status="finished", finish_reason="finished", stats={})


def timed_reparse(source: Path, target: Path, jobs: int) -> tuple[float, int, float, float, float]:
    """(seconds, pages stored, resident MiB, CPU seconds of this process (the writer), CPU
    seconds of the worker processes)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    t0, before = time.perf_counter(), os.times()
    with Archive(f"sqlite:///{source}") as src, Archive(f"sqlite:///{target}") as dst:
        result = reparse(src, dst, jobs=jobs)
    seconds, after = time.perf_counter() - t0, os.times()
    own = after.user + after.system - before.user - before.system
    workers = (
        after.children_user + after.children_system
        - before.children_user - before.children_system
    )  # fmt: skip
    return seconds, result.pages_stored, rss_mib(), own, workers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2, help="the many-jobs side (default 2)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # layout_drift lines of the drift fixture, many times
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "source.db", Path(tmp) / "target.db"
        build(source, args.pages)
        pages = list(replicate(args.pages))
        for _ in range(args.runs):
            parse_s, _raw = bench_parse(pages)
            one = timed_reparse(source, target, 1)
            many = timed_reparse(source, target, args.jobs)
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            rows.append((one, many, args.pages / parse_s, load))
    print(f"{args.pages} replicated fixture pages re-read into a fresh archive "
          f"({os.cpu_count()} CPUs)\n")  # fmt: skip
    print(f"| run | parse alone pages/s (1 core) | --jobs 1 pages/s | --jobs {args.jobs} pages/s "
          "| speed-up | whole path per core vs parse | pages stored | resident MiB "
          "| load average |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    ups, per_core, bounds = [], [], []
    for i, ((s1, n1, m1, *_), (s2, n2, m2, *_), parse_rate, load) in enumerate(rows, 1):
        ups.append((n2 / s2) / (n1 / s1))
        per_core.append(n2 / s2 / min(args.jobs, os.cpu_count() or 1) / parse_rate)
        print(f"| {i} | {parse_rate:,.0f} | {n1 / s1:,.0f} | {n2 / s2:,.0f} | {ups[-1]:.2f} "
              f"| {per_core[-1]:.2f} | {n1} / {n2} | {m1:.0f} / {m2:.0f} | {load} |")  # fmt: skip
    print(f"\nreparse --jobs {args.jobs} vs --jobs 1: min {min(ups):.2f}, median "
          f"{statistics.median(ups):.2f} (target >= {TARGET})")  # fmt: skip
    print(
        f"whole path per core (reparse --jobs {args.jobs}) vs parse alone: min "
        f"{min(per_core):.2f}, median {statistics.median(per_core):.2f} (target >= 0.5)"
    )
    # CPU, which a shared machine does not distort as it does wall time: the writer's share is
    # serial, the workers' runs on the other cores.
    cores = min(args.jobs, os.cpu_count() or 1)
    print(f"\n| run | --jobs 1 CPU ms/page | --jobs {args.jobs}: writer CPU ms/page | workers CPU "
          f"ms/page | speed-up {cores} idle cores would give |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|")
    for i, (one, many, _, _) in enumerate(rows, 1):
        cpu1 = (one[3] + one[4]) * 1000 / one[1]
        writer, workers = many[3] * 1000 / many[1], many[4] * 1000 / many[1]
        bounds.append(cpu1 / max(writer, (writer + workers) / cores))
        print(f"| {i} | {cpu1:.2f} | {writer:.2f} | {workers:.2f} | {bounds[-1]:.2f} |")
    print(
        f"\nspeed-up on {cores} idle cores (from CPU times): min {min(bounds):.2f}, median "
        f"{statistics.median(bounds):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
