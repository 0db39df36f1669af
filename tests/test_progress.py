"""Progress of long runs: a bar on a terminal, log lines off it, silence under cron."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from conftest import ROOT, scrapy_crawl

from rsarchive.progress import Progress, progress_line

RSARCHIVE = Path(sys.executable).parent / "rsarchive"


def test_progress_line_says_done_rate_and_eta():
    assert progress_line("reparse", 120, 600, 60.0) == (
        "reparse: 120 of 600 pages (20%), 2.0 pages/s, ETA 4 min 0 s"
    )
    assert progress_line("feed crawl", 12, None, 4.0) == "feed crawl: 12 pages, 3.0 pages/s"
    assert progress_line("export", 10, 10, 1.0, "articles") == (
        "export: 10 of 10 articles (100%), 10.0 articles/s"
    )


def test_off_a_terminal_a_log_line_at_most_every_interval(caplog):
    now = [0.0]
    progress = Progress("reparse", 100, interval=30, stream=io.StringIO(), clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="rsarchive.progress"):
        for done in range(1, 101):
            now[0] = done * 1.0  # one page a second
            progress.update(done)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "reparse: 30 of 100 pages (30%), 1.0 pages/s, ETA 70 s",
        "reparse: 60 of 100 pages (60%), 1.0 pages/s, ETA 40 s",
        "reparse: 90 of 100 pages (90%), 1.0 pages/s, ETA 10 s",
    ]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_and_no_log_lines(caplog):
    term = FakeTerminal()
    with (
        caplog.at_level(logging.INFO, logger="rsarchive.progress"),
        Progress("export", 50, unit="articles", interval=0, stream=term) as progress,
    ):
        for done in range(1, 51):
            progress.update(done)
    assert caplog.records == []
    shown = term.getvalue()
    assert "export:" in shown and "/50 [" in shown and "articles/s" in shown
    assert shown.endswith("\r")  # the bar is cleared at the end (leave=False)


def test_scrapy_crawl_logs_progress_lines(site_server, tmp_path):
    pages = [p.name for p in site_server.site.pages.values()]
    for name in pages:  # slow enough for a few lines at a 0.2 s interval
        site_server.delays[site_server.page_url(name).replace(site_server.url, "")] = 0.2
    urls = ",".join(site_server.page_url(n) for n in pages)
    result = scrapy_crawl(
        "article", tmp_path / "a.db", site_server.url, "-a", f"urls={urls}",
        "-a", "feed_pages=0", settings={"RSARCHIVE_PROGRESS_INTERVAL": "0.2"},
    )  # fmt: skip
    lines = [ln for ln in result.log.splitlines() if "[rsarchive.progress] INFO:" in ln]
    assert lines, result.log[-3000:]
    assert all(" pages/s" in ln and "article crawl: " in ln for ln in lines)
    assert "INFO: summary: " in result.log


def test_rsarchive_crawl_on_a_terminal_shows_a_bar_and_cron_sees_nothing(site_server, tmp_path):
    seed = site_server.page_url("seed")
    cmd = [str(RSARCHIVE), "crawl", "article", "-a", f"url={seed}", "--db", str(tmp_path / "a.db"),
           "-s", f"RSARCHIVE_SITE_URL={site_server.url}", "-s", "DOWNLOAD_DELAY=0",
           "-s", "AUTOTHROTTLE_ENABLED=0"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    site_server.delays[seed.replace(site_server.url, "")] = 1.5  # the bar moves every second
    # Under cron: no terminal, nothing on stdout or stderr.
    quiet = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    # On a terminal: the bar on stderr.
    leader, follower = pty.openpty()
    # A terminal of 30 rows and 100 columns (a new pseudo-terminal has none: tqdm draws nothing).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [*cmd[:-6], "--db", str(tmp_path / "b.db"), *cmd[-6:]],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    assert b"article crawl" in seen and b"pages" in seen, seen
    assert b"INFO" not in seen  # a bar, not the log


def test_reparse_and_export_report_progress_when_asked(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    db = tmp_path / "demo.db"
    demo = subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", "demo", "--db", str(db)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "rsarchive.cli", *args, "--db", str(db)],
            cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip

    # Silent by default off a terminal (cron): only the closing line.
    quiet = run("reparse")
    assert quiet.returncode == 0 and "reparse: " not in quiet.stderr  # (drift warnings stay)
    loud = run("reparse", RSARCHIVE_LOG_LEVEL="INFO", RSARCHIVE_PROGRESS_INTERVAL="0.000001")
    assert loud.returncode == 0
    assert "reparse: 20 of 20 captures (100%)" in loud.stderr, loud.stderr
    out = tmp_path / "all.csv"
    export = run("export", "-o", str(out), RSARCHIVE_LOG_LEVEL="INFO",
                 RSARCHIVE_PROGRESS_INTERVAL="0.000001")  # fmt: skip
    assert export.returncode == 0
    assert "export: 10 of 10 articles (100%)" in export.stderr
    assert out.read_text(encoding="utf-8").startswith("id,url,")  # CSV, from the extension
