"""The benchmarks keep running: each on a tiny size, checking the table it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str, timeout: int = 300) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_bench_query_builds_an_archive_the_readers_open(tmp_path: Path) -> None:
    cache = tmp_path / "bench.db"
    out = _bench("bench_query.py", "--articles", "300", "--cache", str(cache), "--repeat", "1")
    assert "archive: 300 articles" in out
    for row in ("| search, 18 queries x 1", "| show by URL", "| export jsonl, 300 articles"):
        assert row in out
    # The cache is reused as it is: a second run opens it without building again.
    again = _bench("bench_query.py", "--articles", "300", "--cache", str(cache), "--repeat", "1")
    assert "archive: 300 articles" in again
