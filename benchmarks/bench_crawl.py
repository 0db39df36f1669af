"""A whole Scrapy crawl with our pipeline against a bare Scrapy spider, in pages/s.

Both crawls fetch the same N replicated fixture pages through Scrapy's engine, scheduler and
middlewares, answered from memory (no network, no politeness delay), one crawl per process:

  bare      a minimal spider that parses each page (``response.selector``) and yields its title;
  archive   `scrapy crawl article` with split -> clean -> store into a fresh SQLite file.

    python benchmarks/bench_crawl.py [--pages 2000]

Compare the ratio, not the absolute numbers: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SITE = "https://responsiblestatecraft.org"


class ReplicaSiteMiddleware:
    """Downloader middleware: answers every page of the replicated site from memory."""

    def __init__(self, pages: int) -> None:
        from bench_pipeline import replicate

        self.pages = {url: (body, ctype) for url, body, ctype in replicate(pages)}

    @classmethod
    def from_crawler(cls, crawler: Any) -> ReplicaSiteMiddleware:
        return cls(crawler.settings.getint("BENCH_PAGES"))

    def process_request(self, request: Any) -> Any:
        from scrapy.http import HtmlResponse, TextResponse

        if request.url.endswith("/robots.txt"):
            return TextResponse(request.url, body=b"User-agent: *\nAllow: /\n", request=request)
        body, ctype = self.pages[request.url]
        headers = {"Content-Type": ctype}
        return HtmlResponse(request.url, body=body, headers=headers, request=request)


def bare_spider_cls() -> type:
    import scrapy

    class BareSpider(scrapy.Spider):
        name = "bare"

        def __init__(self, urls: str = "", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.urls = urls.split(",")

        async def start(self) -> Any:
            for url in self.urls:
                yield scrapy.Request(url)

        def parse(self, response: Any) -> Any:
            yield {"url": response.url, "title": response.css("title::text").get()}

    return BareSpider


def run_one(kind: str, pages: int, db: str) -> None:
    """Child process: one crawl; prints its stats as JSON on the last line."""
    sys.path.insert(0, str(HERE))
    from bench_pipeline import replicate
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("rsarchive.settings", priority="project")
    settings.setdict(
        {
            "BENCH_PAGES": pages,
            "DOWNLOADER_MIDDLEWARES": {"bench_crawl.ReplicaSiteMiddleware": 990},
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "CONCURRENT_REQUESTS": 16,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
            "LOG_LEVEL": "ERROR",
            "RSARCHIVE_DATABASE_URL": f"sqlite:///{db}",
            **({"ITEM_PIPELINES": {}} if kind == "bare" else {}),
        },
        priority="cmdline",
    )
    urls = ",".join(url for url, _, _ in replicate(pages))
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(bare_spider_cls() if kind == "bare" else "article")
    # The pages alone: the replicated site has no load-more feed to walk.
    process.crawl(crawler, urls=urls, **({} if kind == "bare" else {"feed_pages": "0"}))
    process.start()
    stats = crawler.stats.get_stats()
    seconds = (stats["finish_time"] - stats["start_time"]).total_seconds()
    items = stats.get("item_scraped_count", 0)
    print(json.dumps({"seconds": seconds, "items": items, "maxrss": stats.get("memusage/max")}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--child", choices=["bare", "archive"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_one(args.child, args.pages, args.db)
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("bare", "archive"):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--pages", str(args.pages),
                 "--db", str(Path(tmp) / f"{kind}.db")],
                capture_output=True, text=True, check=True, cwd=ROOT,
                env={**os.environ, "PYTHONPATH": f"{HERE}:{ROOT}"},
            )  # fmt: skip
            results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    bare = results["bare"]["items"] / results["bare"]["seconds"]
    ours = results["archive"]["items"] / results["archive"]["seconds"]
    print(f"{args.pages} replicated fixture pages, answered from memory\n")
    print("| crawl | pages/s | vs bare |")
    print("|---|---:|---:|")
    print(f"| bare Scrapy spider: parse + yield the title | {bare:,.0f} | 1.00 |")
    print(f"| `article` spider + split, clean, store (SQLite) | {ours:,.0f} | {ours / bare:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
