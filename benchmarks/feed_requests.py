"""Requests made by a first and a second (nothing changed) feed and sitemap run, by kind.

Serves the bundled fixture site on 127.0.0.1 (as the tests do), runs `rsarchive crawl feed`
twice and `rsarchive crawl sitemap` twice against it (the cron command, so the exit code is the
contract's), each pair into a fresh SQLite file, and prints how many requests of each kind the
server saw per run. Counts, not timings.

    python benchmarks/feed_requests.py [--listings /europe/,/tag/nato/]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rsarchive.demo import FixtureSite  # noqa: E402

KINDS = ("robots", "feeds", "sitemaps", "listings", "load-more", "articles")


def kind(path: str) -> str:
    path = path.split("?", 1)[0]
    if path == "/robots.txt":
        return "robots"
    if path in ("/feed/", "/feeds/feed.rss"):
        return "feeds"
    if path.startswith("/feeds/sitemaps/"):
        return "sitemaps"
    if path.startswith("/res/load_more_posts/"):
        return "load-more"
    if path == "/" or "/page/" in path or path.rstrip("/") in ("/europe", "/tag/nato"):
        return "listings"
    return "articles"


def serve(site: FixtureSite, log: list[str]) -> tuple[ThreadingHTTPServer, str]:
    holder: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.append(self.path)
            status, headers, body = site.respond(
                self.path, origin=holder["url"], request_headers=dict(self.headers.items())
            )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["url"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, holder["url"]


def crawl(spider: str, db: Path, site_url: str, listings: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    cmd = [sys.executable, "-m", "rsarchive.cli", "crawl", spider, "--db", str(db)]
    for key, value in {
        "RSARCHIVE_SITE_URL": site_url,
        "RSARCHIVE_FEED_LISTINGS": listings,
        "DOWNLOAD_DELAY": "0",
        "AUTOTHROTTLE_ENABLED": "0",
        "LOG_LEVEL": "WARNING",
    }.items():
        cmd += ["-s", f"{key}={value}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listings", default="/europe/,/tag/nato/")
    args = parser.parse_args()
    log: list[str] = []
    httpd, url = serve(FixtureSite(ROOT / "fixtures"), log)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for spider in ("feed", "sitemap"):
                db = Path(tmp) / f"{spider}.db"
                for run in ("first", "second"):
                    log.clear()
                    code = crawl(spider, db, url, args.listings)
                    rows.append((f"{spider} ({run} run)", code, Counter(kind(p) for p in log)))
    finally:
        httpd.shutdown()
    header = ["run", "exit", *KINDS, "total"]
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for name, code, count in rows:
        cells = [str(count.get(k, 0)) for k in KINDS]
        print(f"| {name} | {code} | " + " | ".join(cells) + f" | {sum(count.values())} |")


if __name__ == "__main__":
    main()
