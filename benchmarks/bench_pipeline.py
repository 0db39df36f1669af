"""Pages/s of the split -> clean -> store path against the one unavoidable HTML parse.

Replicates the archivable fixture pages to N pages with distinct URLs and post ids, then, in one
run and one process, measures:

  (a) the parse alone: decode + lxml parse, exactly what Scrapy does for ``response.selector``;
  (b) the whole path: that parse + split + clean + store (captures, FTS, one transaction a
      page) into a fresh SQLite file, through the real pipeline classes;
  (c) their ratio (target: b >= 0.5 x a), and resident memory as the page count grows.

    python benchmarks/bench_pipeline.py [--pages 2000]

Numbers vary with the machine; compare ratios from one run, not absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lxml.html  # noqa: E402
from parsel import Selector  # noqa: E402
from scrapy.utils.test import get_crawler  # noqa: E402

from rsarchive.extract import parse_page  # noqa: E402
from rsarchive.extract.text import html_text  # noqa: E402
from rsarchive.items import Page  # noqa: E402
from rsarchive.pipelines.clean import CleanPipeline  # noqa: E402
from rsarchive.pipelines.split import SplitPipeline  # noqa: E402
from rsarchive.pipelines.store import StorePipeline  # noqa: E402
from rsarchive.spiders.article import ArticleSpider  # noqa: E402

SITE = "https://responsiblestatecraft.org"


def fixture_pages() -> list[tuple[str, bytes, str, str | None]]:
    """(url, body, content type, post id) of every archivable fixture page."""
    pages = []
    for meta_file in sorted((ROOT / "fixtures").glob("*/meta.json")):
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if meta.get("status", 200) != 200:
            continue
        body = meta_file.with_name("page.html").read_bytes()
        ctype = (meta.get("headers") or {}).get("Content-Type", "text/html; charset=utf-8")
        parsed = parse_page(html_text(body, ctype), meta["url"])
        if parsed.article is not None and not parsed.article.title:
            continue  # dropped by clean: not part of the archivable path
        post_id = parsed.article.post_id if parsed.article else None
        pages.append((meta["url"], body, ctype, post_id))
    return pages


def replicate(n: int) -> Iterator[tuple[str, bytes, str]]:
    """N distinct pages: each copy gets its own URL (canonical included) and post id."""
    base = fixture_pages()
    for i in range(n):
        url, body, ctype, post_id = base[i % len(base)]
        copy = i // len(base)
        path = url.removeprefix(SITE).rstrip("/")
        new_path = f"{path}-copy{copy}"
        body = body.replace(path.encode(), new_path.encode())
        if post_id:
            body = body.replace(post_id.encode(), str(int(post_id) + 7 * copy + 1).encode())
        yield f"{SITE}{new_path}/", body, ctype


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_parse(pages: list[tuple[str, bytes, str]]) -> tuple[float, float]:
    gc.collect()
    t0 = time.perf_counter()
    for _url, body, ctype in pages:
        Selector(text=html_text(body, ctype))
    selector = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _url, body, _ctype in pages:
        lxml.html.document_fromstring(body)
    raw = time.perf_counter() - t0
    return selector, raw


def bench_pipeline(pages: list[tuple[str, bytes, str]], db: Path) -> tuple[float, list, dict]:
    crawler = get_crawler(
        ArticleSpider,
        {"RSARCHIVE_DATABASE_URL": f"sqlite:///{db}", "RSARCHIVE_SITE_URL": SITE},
    )
    crawler.spider = ArticleSpider.from_crawler(crawler, url=SITE)
    crawler.stats.open_spider()
    steps = [SplitPipeline.from_crawler(crawler), CleanPipeline.from_crawler(crawler)]
    store = StorePipeline.from_crawler(crawler)
    store.open_spider()
    checkpoints = {len(pages) // 4, len(pages) // 2, len(pages)}
    memory = []

    async def run() -> None:
        # As in a crawl: the next page is parsed while the writer thread commits the last ones
        # (at most CONCURRENT_ITEMS pages in flight).
        in_flight: set[asyncio.Future] = set()
        for i, (url, body, ctype) in enumerate(pages, 1):
            item = Page(
                url=url,
                status=200,
                fetched_at="2026-11-25T12:00:00Z",
                requested_url=url,
                content_type=ctype,
                headers={"Content-Type": ctype},
                body=body,
                selector=Selector(text=html_text(body, ctype)),
            )
            for step in steps:
                item = step.process_item(item)
            task = asyncio.ensure_future(store.process_item(item))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            await asyncio.sleep(0)
            if len(in_flight) >= 100:
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            if i in checkpoints:
                memory.append((i, rss_mib()))
        await asyncio.gather(*in_flight)

    gc.collect()
    t0 = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - t0
    store.spider_closed(crawler.spider, "finished")
    return elapsed, memory, crawler.stats.get_stats()


def bench_steps(pages: list[tuple[str, bytes, str]], db: Path) -> dict[str, float]:
    """Seconds spent in each step, one page after the other on one thread (where time goes)."""
    from rsarchive.archive import Archive

    spent = dict.fromkeys(("parse", "split", "store"), 0.0)
    with Archive(f"sqlite:///{db}") as archive:
        for url, body, ctype in pages:
            t0 = time.perf_counter()
            selector = Selector(text=html_text(body, ctype))
            t1 = time.perf_counter()
            parsed = parse_page(selector, url)
            t2 = time.perf_counter()
            page = Page(url=url, status=200, fetched_at="2026-11-25T12:00:00Z",
                        content_type=ctype, body=body, article=parsed.article,
                        teasers=parsed.teasers)  # fmt: skip
            archive.store_page(page, None)
            t3 = time.perf_counter()
            spent["parse"] += t1 - t0
            spent["split"] += t2 - t1
            spent["store"] += t3 - t2
    return spent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # layout_drift lines for the drift fixture, 2,000 times
    pages = list(replicate(args.pages))
    n = len(pages)
    size = sum(len(b) for _, b, _ in pages) / n / 1024
    with tempfile.TemporaryDirectory() as tmp:
        parse_s, raw_s = bench_parse(pages)
        whole_s, memory, stats = bench_pipeline(pages, Path(tmp) / "bench.db")
        db_mib = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        steps = bench_steps(pages, Path(tmp) / "steps.db")
    a, b = n / parse_s, n / whole_s
    stored = stats.get("rsarchive/pages_stored", 0)
    teasers = stats.get("rsarchive/teasers_seen", 0)
    print(f"{n} pages (avg {size:.0f} KiB): {stored} stored, {teasers} teasers, {db_mib:.1f} MiB")
    print()
    rows = [
        ("(a) parse alone: decode + lxml, as `response.selector`", a),
        ("lxml `document_fromstring(bytes)` only, for reference", n / raw_s),
        ("(b) parse + split + clean + store (SQLite, captures, FTS)", b),
    ]
    print("| path | pages/s | ms/page | vs (a) |")
    print("|---|---:|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {1000 / rate:.2f} | {rate / a:.2f} |")
    print()
    print(f"(c) ratio b/a = {b / a:.2f} (target >= 0.50)")
    print()
    total = sum(steps.values())
    print("| step, one thread, one page after another | ms/page | share |")
    print("|---|---:|---:|")
    for name, seconds in steps.items():
        print(f"| {name} | {1000 * seconds / n:.2f} | {seconds / total:.0%} |")
    print()
    print("| pages stored | resident memory (MiB) |")
    print("|---:|---:|")
    for count, mib in memory:
        print(f"| {count} | {mib:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
