"""Progress of long runs (crawls, ``reparse``, ``export``): pages done, rate, and an ETA when
the total is known.

On a terminal a tqdm bar on stderr; otherwise a plain log line every ``interval`` seconds
(logger ``rsarchive.progress``), so a cron job stays silent unless its log level asks for them.
``ProgressExtension`` is the Scrapy side: it reports a crawl's progress from its stats.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

logger = logging.getLogger("rsarchive.progress")

#: Seconds between two progress log lines.
DEFAULT_INTERVAL = 30.0


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def progress_line(
    what: str, done: int, total: int | None, elapsed: float, unit: str = "pages"
) -> str:
    """``reparse: 120 of 600 pages (20%), 2.1 pages/s, ETA 3 min 48 s``."""
    rate = done / elapsed if elapsed > 0 else 0.0
    head = f"{done:,} of {total:,} {unit} ({done / total:.0%})" if total else f"{done:,} {unit}"
    line = f"{what}: {head}, {rate:.1f} {unit}/s"
    if total and rate > 0 and done < total:
        line += f", ETA {duration((total - done) / rate)}"
    return line


class Progress:
    """Report ``update(done, total)`` calls: a bar on a terminal, else a log line at most every
    ``interval`` seconds. ``bar``: None decides by whether ``stream`` is a terminal."""

    def __init__(
        self,
        what: str,
        total: int | None = None,
        *,
        unit: str = "pages",
        interval: float = DEFAULT_INTERVAL,
        bar: bool | None = None,
        stream: TextIO | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.what, self.total, self.unit, self.interval = what, total, unit, interval
        self.stream = stream or sys.stderr
        self.clock = clock
        self.started = self.last = clock()
        self.done = 0
        self.lines = 0
        use_bar = bar if bar is not None else _is_terminal(self.stream)
        self._bar = None
        if use_bar:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=what, unit=f" {unit}", file=self.stream, leave=False,
                dynamic_ncols=True, mininterval=0.5,
            )  # fmt: skip

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        step, self.done = done - self.done, done
        if self._bar is not None:
            if self._bar.total != self.total:
                self._bar.total = self.total
                self._bar.refresh()
            self._bar.update(step)
            return
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.lines += 1
            logger.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (now if now is not None else self.clock()) - self.started
        return progress_line(self.what, self.done, self.total, elapsed, self.unit)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def command_progress(what: str, total: int | None, *, unit: str = "pages") -> Progress | None:
    """The progress of a command's long loop (``reparse``, ``export``), or None when
    ``RSARCHIVE_PROGRESS_INTERVAL`` is 0. Off a terminal its lines go to stderr only when
    ``RSARCHIVE_LOG_LEVEL`` is INFO or DEBUG (default: none, so cron stays silent)."""
    import os

    try:
        interval = float(os.environ.get("RSARCHIVE_PROGRESS_INTERVAL") or DEFAULT_INTERVAL)
    except ValueError:
        interval = DEFAULT_INTERVAL
    if interval <= 0:
        return None
    log_progress_to_stderr()
    return Progress(what, total, unit=unit, interval=interval)


def log_progress_to_stderr() -> None:
    """For commands that set up no logging: progress lines on stderr at ``RSARCHIVE_LOG_LEVEL``
    (default WARNING here: none)."""
    import os

    level = os.environ.get("RSARCHIVE_LOG_LEVEL", "WARNING").upper()
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level if level in logging.getLevelNamesMapping() else "WARNING")
    logger.propagate = False


class ProgressExtension:
    """A crawl's progress: pages done (stored, 304, failed), rate, queued requests, an ETA.

    Every ``RSARCHIVE_PROGRESS_INTERVAL`` seconds (default 30; 0 turns it off) a log line; with
    ``RSARCHIVE_PROGRESS_BAR`` (``rsarchive crawl`` on a terminal, without ``-v``) a bar on
    stderr instead. The total is what is done plus what the scheduler still holds.
    """

    def __init__(self, crawler: Any, interval: float, bar: bool) -> None:
        self.crawler = crawler
        self.interval = interval
        self.bar = bar
        self.progress: Progress | None = None
        self.task: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> ProgressExtension:
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        from rsarchive.config import SettingError, get_float

        try:
            interval = get_float(crawler.settings, "RSARCHIVE_PROGRESS_INTERVAL")
        except SettingError:
            # The spider checks the same setting and stops the run with config_error (78).
            raise NotConfigured from None
        if interval <= 0:
            raise NotConfigured
        ext = cls(crawler, interval, crawler.settings.getbool("RSARCHIVE_PROGRESS_BAR"))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task

        self.progress = Progress(
            f"{spider.name} crawl", interval=self.interval, bar=self.bar or False
        )
        self.task = task.LoopingCall(self.tick)
        # A bar moves every second; log lines come every interval (Progress rate-limits them).
        self.task.start(1.0 if self.bar else min(self.interval, 5.0), now=False)

    def counts(self) -> tuple[int, int | None]:
        from rsarchive.outcome import pages_done

        stats = self.crawler.stats.get_stats()
        done = pages_done(stats)
        queued = int(stats.get("scheduler/enqueued", 0)) - int(stats.get("scheduler/dequeued", 0))
        return done, done + max(queued, 0)

    def tick(self) -> None:
        if self.progress is not None:
            done, total = self.counts()
            self.progress.update(done, total)

    def spider_closed(self, spider: Any) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        if self.progress is not None:
            self.progress.close()
