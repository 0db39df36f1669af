"""Scrapy settings for rsarchive: politeness, limits, pipeline order and the RSARCHIVE_* keys.

Every RSARCHIVE_* key can also be set by an environment variable of the same name; ``-s KEY=VALUE``
on the command line wins over both. Environment values are kept as given (strings): the component
using a key parses it (``rsarchive.config``), so a bad value is reported naming its key instead of
breaking this import.
"""

from __future__ import annotations

import os

from rsarchive import __version__

BOT_NAME = "rsarchive"
SPIDER_MODULES = ["rsarchive.spiders"]
NEWSPIDER_MODULE = "rsarchive.spiders"

# --- rsarchive ---------------------------------------------------------------------------------
RSARCHIVE_DATABASE_URL = os.environ.get("RSARCHIVE_DATABASE_URL", "sqlite:///rsarchive.db")
RSARCHIVE_SITE_URL = os.environ.get("RSARCHIVE_SITE_URL", "https://responsiblestatecraft.org")
RSARCHIVE_FEED_MAX_PAGES = os.environ.get("RSARCHIVE_FEED_MAX_PAGES", "20")
# The feed spider: RSS feeds to read, listing pages to walk besides the home page (comma lists of
# paths on the site; a listing is followed through its /page/N/ links).
RSARCHIVE_FEED_URLS = os.environ.get("RSARCHIVE_FEED_URLS", "/feed/,/feeds/feed.rss")
RSARCHIVE_FEED_LISTINGS = os.environ.get("RSARCHIVE_FEED_LISTINGS", "")
# An archived article the feed spider sees named again is asked for again (If-None-Match /
# If-Modified-Since) once its last check is this old: edits do not change RSS dates. 0: never.
RSARCHIVE_FEED_RECHECK_HOURS = os.environ.get("RSARCHIVE_FEED_RECHECK_HOURS", "24")
# `scrapy crawl article -a follow=1`: at most this many teaser targets a run.
RSARCHIVE_FOLLOW_MAX = os.environ.get("RSARCHIVE_FOLLOW_MAX", "100")
# Who runs this crawler: put your own contact URL or e-mail here (it goes into the User-Agent).
RSARCHIVE_CONTACT = os.environ.get("RSARCHIVE_CONTACT", "https://github.com/rsarchive/rsarchive")
# `rsarchive crawl`: where each run's log file goes (empty: a logs/ folder beside the SQLite file).
RSARCHIVE_LOG_DIR = os.environ.get("RSARCHIVE_LOG_DIR", "")
# The longest Retry-After (seconds) a 429/503 answer is waited for; beyond it the request fails.
RSARCHIVE_RETRY_AFTER_MAX = os.environ.get("RSARCHIVE_RETRY_AFTER_MAX", "300")
# `scrapy crawl wayback`: the Wayback Machine (its CDX API and raw captures) to back-fill from.
RSARCHIVE_WAYBACK_URL = os.environ.get("RSARCHIVE_WAYBACK_URL", "https://web.archive.org")
# Several crawler processes on one shared frontier (scrapy-redis): a Redis URL such as
# redis://HOST:6379/0; empty: this process crawls alone. See rsarchive/frontier/.
RSARCHIVE_FRONTIER_URL = os.environ.get("RSARCHIVE_FRONTIER_URL", "")
# Seconds after which the requests of a worker that stopped answering go back in the queue.
RSARCHIVE_FRONTIER_LEASE = os.environ.get("RSARCHIVE_FRONTIER_LEASE", "30")
# Redis key prefixes: a spider's frontier (queue, duplicate filter, workers), and the per-host
# politeness budget every spider shares.
RSARCHIVE_FRONTIER_KEY = os.environ.get("RSARCHIVE_FRONTIER_KEY", "rsarchive:%(spider)s")
RSARCHIVE_FRONTIER_HOST_KEY = os.environ.get("RSARCHIVE_FRONTIER_HOST_KEY", "rsarchive:host")
# `rsarchive crawl` with a frontier: the cron lock is this worker's (default: the host name).
RSARCHIVE_WORKER = os.environ.get("RSARCHIVE_WORKER", "")
# Seconds between two progress lines in the log (pages done, rate, queued, ETA); 0: none.
RSARCHIVE_PROGRESS_INTERVAL = os.environ.get("RSARCHIVE_PROGRESS_INTERVAL", "30")
# Processes that split pages off the reactor thread (0: in line; see pipelines/split.py): for
# long crawls on a machine with a core to spare.
RSARCHIVE_EXTRACT_PROCESSES = os.environ.get("RSARCHIVE_EXTRACT_PROCESSES", "0")

# --- politeness --------------------------------------------------------------------------------
USER_AGENT = f"rsarchive/{__version__} (archiving bot; +{RSARCHIVE_CONTACT})"
ROBOTSTXT_OBEY = True
DOWNLOAD_DELAY = 1.0
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]

# --- limits and safety -------------------------------------------------------------------------
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# --- components --------------------------------------------------------------------------------
DOWNLOADER_MIDDLEWARES = {
    # robots.txt answering 5xx or unreachable means fetch nothing (RFC 9309), not allow all.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "rsarchive.middlewares.RobotsTxtUnavailableMiddleware": 100,
    # Retries wait for a 429/503's Retry-After.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "rsarchive.middlewares.RetryAfterMiddleware": 550,
    # A redirect loop or a redirect off the site is a failure the log names, not a silent drop.
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "rsarchive.middlewares.SiteRedirectMiddleware": 600,
    # A body cut short (compressed or not) is a failed fetch, not a page; so is a bomb.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "rsarchive.middlewares.WholeBodyMiddleware": 590,
    # Answers from the bundled fixture site; only switched on by `rsarchive demo`. Last in line,
    # so robots.txt, offsite filtering and the User-Agent still apply.
    "rsarchive.demo.FixtureSiteMiddleware": 990,
}
# With RSARCHIVE_FRONTIER_URL set: the shared scrapy-redis scheduler, duplicate filter and limits.
ADDONS = {"rsarchive.frontier.FrontierAddon": 0}
EXTENSIONS = {
    "rsarchive.progress.ProgressExtension": 500,
}
ITEM_PIPELINES = {
    "rsarchive.pipelines.split.SplitPipeline": 100,
    "rsarchive.pipelines.clean.CleanPipeline": 200,
    "rsarchive.pipelines.store.StorePipeline": 300,
}

# Feed exports (-o/-O) write a page's article and teasers, never the raw body or parsed tree.
# A load-more page of a keep-reading feed exports as its url, page_url and teasers.
FEED_EXPORT_FIELDS = [
    "url", "requested_url", "status", "fetched_at", "page_url", "article", "teasers",
]  # fmt: skip
FEED_EXPORT_ENCODING = "utf-8"

LOG_FORMATTER = "rsarchive.pipelines.clean.PageLogFormatter"
LOG_LEVEL = os.environ.get("RSARCHIVE_LOG_LEVEL", "INFO")
