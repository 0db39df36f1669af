"""A whole Scrapy crawl with our pipeline against a bare Scrapy spider, in pages/s.

Both crawls fetch the same N replicated fixture pages over real HTTP from a loopback server (its
own process), through Scrapy's engine, scheduler and the project's production middlewares
(robots.txt, Retry-After, offsite, User-Agent, ...): only the politeness delay and AutoThrottle
are off, one crawl per process:

  bare      a minimal spider that parses each page (``response.selector``) and yields its title;
  archive   `scrapy crawl article` with split -> clean -> store into a fresh SQLite file;
  archive+1 the same with the split on one extraction process (RSARCHIVE_EXTRACT_PROCESSES=1).

    python benchmarks/bench_crawl.py [--pages 2000] [--runs 3]

Runs alternate bare, archive, archive+1, bare, ...; each run's ratios compare crawls measured
back to back. CPU ms/page counts the crawl's process and its extraction processes. Compare
ratios, not absolute numbers: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_pipeline import SITE, replicate  # noqa: E402

TARGET = 0.8
KINDS = ("bare", "archive", "archive+1")


def serve(pages: int, ready: Any) -> None:
    """Server process: the replicated site on 127.0.0.1 (HTTP/1.1, keep-alive), links rebased."""
    site: dict[str, tuple[bytes, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, ctype, body = 200, "text/plain", b"User-agent: *\nAllow: /\n"
            if self.path in site:
                body, ctype = site[self.path]
            elif self.path != "/robots.txt":
                status, body = 404, b"not found"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    for url, body, ctype in replicate(pages):
        # The site names itself in its links, as a mirror would.
        site[url.removeprefix(SITE)] = (body.replace(SITE.encode(), origin.encode()), ctype)
    ready.send(origin)
    httpd.serve_forever()


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


def run_one(kind: str, origin: str, pages: int, db: str) -> None:
    """Child process: one crawl; prints its stats as JSON on the last line."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    settings = Settings()
    # The project's settings as they are (middlewares included); only the politeness waits go.
    settings.setmodule("rsarchive.settings", priority="project")
    settings.setdict(
        {
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "CONCURRENT_REQUESTS": 16,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
            "LOG_LEVEL": "ERROR",
            "RSARCHIVE_SITE_URL": origin,
            "RSARCHIVE_DATABASE_URL": f"sqlite:///{db}",
            **({"ITEM_PIPELINES": {}} if kind == "bare" else {}),
            "RSARCHIVE_EXTRACT_PROCESSES": 1 if kind == "archive+1" else 0,
        },
        priority="cmdline",
    )
    urls = ",".join(origin + url.removeprefix(SITE) for url, _, _ in replicate(pages))
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(bare_spider_cls() if kind == "bare" else "article")
    # The pages alone: the replicated site has no load-more feed to walk.
    process.crawl(crawler, urls=urls, **({} if kind == "bare" else {"feed_pages": "0"}))
    process.start()
    stats = crawler.stats.get_stats()
    seconds = (stats["finish_time"] - stats["start_time"]).total_seconds()
    items = stats.get("item_scraped_count", 0)
    cpu = os.times()
    print(json.dumps({
        "seconds": seconds, "items": items,
        "cpu": cpu.user + cpu.system + cpu.children_user + cpu.children_system + _live_children(),
        "stored": stats.get("rsarchive/pages_stored", 0),
    }))  # fmt: skip


def _live_children() -> float:
    """CPU seconds of this process's live children and what they reaped: the forkserver that
    started the extraction processes, which outlives the crawl (Linux only; else 0)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tasks = Path(f"/proc/{os.getpid()}/task").iterdir()
        children = {c for t in tasks for c in (t / "children").read_text().split()}
        for pid in children:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    except OSError:
        return 0.0
    return total


def crawl(kind: str, origin: str, pages: int, db: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--origin", origin, "--pages", str(pages),
         "--db", str(db)],
        capture_output=True, text=True, check=False, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{HERE}:{ROOT}"},
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{kind} crawl failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--origin", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_one(args.child, args.origin, args.pages, args.db)
        return 0
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(args.pages, send), daemon=True
    )
    server.start()
    try:
        origin = receive.recv()
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                rows.append(
                    [crawl(kind, origin, args.pages, Path(tmp) / f"{kind}{i}.db") for kind in KINDS]
                    + [_load()]
                )
    finally:
        server.terminate()
        server.join(timeout=10)
    print(f"{args.pages} replicated fixture pages over HTTP from 127.0.0.1 ({os.cpu_count()} CPUs)")
    print()
    print("| run | crawl | pages/s | pages stored | CPU ms/page | vs bare | load average |")
    print("|---:|---|---:|---:|---:|---:|---|")
    ratios: dict[str, list[float]] = {kind: [] for kind in KINDS[1:]}
    for i, (*crawls, load) in enumerate(rows, 1):
        bare_rate = crawls[0]["items"] / crawls[0]["seconds"]
        for kind, result in zip(KINDS, crawls, strict=True):
            rate = result["items"] / result["seconds"]
            cpu_ms = 1000 * result["cpu"] / max(result["items"], 1)
            stored = result["stored"] if kind != "bare" else "-"
            if kind != "bare":
                ratios[kind].append(rate / bare_rate)
            print(
                f"| {i} | {kind} | {rate:,.0f} | {stored} | {cpu_ms:.2f} "
                f"| {rate / bare_rate:.2f} | {load} |"
            )
    print()
    for kind, values in ratios.items():
        print(
            f"{kind} crawl vs bare Scrapy: min {min(values):.2f}, median "
            f"{statistics.median(values):.2f} (target >= {TARGET})"
        )
    return 0


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
