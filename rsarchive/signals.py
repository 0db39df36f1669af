"""rsarchive's own crawl signals (sent with ``crawler.signals.send_catch_log``)."""

from __future__ import annotations

#: A fetch whose outcome the archive should remember but that yields no page to store: a 304,
#: a request that failed after its retries. Arguments: ``outcome`` (``items.FetchOutcome``).
fetch_outcome = object()
