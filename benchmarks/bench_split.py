"""CPU time of the split (``parse_page``) against the lxml parse of the same page.

Each page is parsed as Scrapy does for ``response.selector`` and split at once, one after the
other, as in a crawl (the tree is still warm). Times are the process's CPU time, which other
processes on a shared machine do not inflate, and each figure is the best of ``--rounds``
rounds. The pages are bench_pipeline's replicated fixture pages; the one page that only the
generic extractor (trafilatura) reads is shown apart, since it costs several RebelMouse pages.

    python benchmarks/bench_split.py [--pages 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_pipeline import replicate  # noqa: E402
from parsel import Selector  # noqa: E402

from rsarchive.extract import parse_page  # noqa: E402
from rsarchive.extract.text import html_text  # noqa: E402


def one_round(pages: list[tuple[str, bytes, str]]) -> tuple[float, dict[str, list[float]]]:
    """(parse seconds, split seconds of each page by extractor) of one pass over the pages."""
    parse = 0.0
    split: dict[str, list[float]] = {"rebelmouse": [], "generic": []}
    gc.collect()
    for url, body, ctype in pages:
        t0 = time.process_time()
        selector = Selector(text=html_text(body, ctype))
        t1 = time.process_time()
        parsed = parse_page(selector, url)
        t2 = time.process_time()
        parse += t1 - t0
        generic = parsed.article is not None and parsed.article.extractor == "generic"
        split["generic" if generic else "rebelmouse"].append(t2 - t1)
    return parse, split


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # layout_drift lines for the drift fixture
    pages = list(replicate(args.pages))
    n = len(pages)
    best_parse = best_all = float("inf")
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _ in range(args.rounds):
        parse, split = one_round(pages)
        best_parse = min(best_parse, parse)
        best_all = min(best_all, sum(map(sum, split.values())))
        for kind, times in split.items():
            if times:
                best[kind] = min(best.get(kind, float("inf")), sum(times))
                counts[kind] = len(times)
    parse_ms = 1000 * best_parse / n
    rebelmouse, generic = counts.get("rebelmouse", 0), counts.get("generic", 0)
    print(f"{n} pages: {rebelmouse} RebelMouse, {generic} generic")
    print()
    print("| step (CPU, best of rounds) | ms/page | vs parse |")
    print("|---|---:|---:|")
    print(f"| parse: decode + lxml, as `response.selector` | {parse_ms:.3f} | 1.00 |")
    rows = [("split, every page", best_all, n)]
    rows += [(f"split, {kind} pages only", best[kind], counts[kind]) for kind in best]
    for name, seconds, count in rows:
        ms = 1000 * seconds / count
        print(f"| {name} | {ms:.3f} | {ms / parse_ms:.2f} |")
    print()
    print(f"split / parse = {best_all / best_parse:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
