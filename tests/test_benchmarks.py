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


def test_bench_crawl_fetches_over_loopback_http_with_the_production_stack() -> None:
    out = _bench("bench_crawl.py", "--pages", "30", "--runs", "1")
    assert "over HTTP from 127.0.0.1" in out
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    cells = {c[1]: c for c in ([x.strip() for x in r.strip("|").split("|")] for r in rows)}
    assert set(cells) == {"bare", "archive", "archive+1"}
    # Every page went through split, clean and store, in line and on an extraction process.
    assert cells["archive"][3] == cells["archive+1"][3] == "30"
    assert "archive crawl vs bare Scrapy: min" in out
    assert "archive+1 crawl vs bare Scrapy: min" in out


def test_bench_size_compares_the_archive_with_a_warc_gz_of_the_same_responses() -> None:
    out = _bench("bench_size.py", "--pages", "100")
    assert "100 replicated fixture pages (100 stored)" in out
    assert "| WARC.gz (warcio, gzip per record) |" in out
    assert "| captures |" in out and "| capture_dictionaries |" in out
    assert "| teasers (teaser_sightings + teaser_contents) |" in out
    assert "| archive after `rsarchive db compact` |" in out
    assert "archive vs WARC.gz:" in out and " compacted (target <= 0.75)" in out


def test_bench_reparse_compares_two_jobs_with_one() -> None:
    out = _bench("bench_reparse.py", "--pages", "40", "--runs", "1")
    run = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    assert "| 40 / 40 |" in run  # both stored every page
    assert "reparse --jobs 2 vs --jobs 1: min" in out


def test_bench_pipeline_compares_the_whole_path_with_the_parse() -> None:
    out = _bench("bench_pipeline.py", "--pages", "40")
    assert out.startswith("40 pages (avg ")
    assert ": 40 stored," in out.splitlines()[0]
    assert "(c) ratio b/a = " in out
    for step in ("| parse |", "| split |", "| store |"):
        assert step in out


def test_bench_webarchive_imports_with_one_and_two_jobs_into_the_same_rows() -> None:
    out = _bench("bench_webarchive.py", "--pages", "40")
    assert "import gives the rows of reparse --into: yes" in out
    assert "import's replay, --jobs 2 vs --jobs 1: " in out


def test_bench_split_compares_the_split_with_the_parse() -> None:
    out = _bench("bench_split.py", "--pages", "40", "--rounds", "1")
    assert "40 pages: 37 RebelMouse, 3 generic" in out
    for row in ("| parse: decode + lxml", "| split, every page |", "| split, generic pages only |"):
        assert row in out
    assert "split / parse = " in out
