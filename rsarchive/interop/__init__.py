"""Web-archive interop: the archive's captures as WARC / WACZ files, and such files back in.

``warc`` writes WARC 1.1 with warcio, ``wacz`` packs that into a WACZ with py-wacz, and
``importer`` reads WARC / WACZ files (any tool's) into the archive through ``rsarchive reparse``'s
replay of captures. The Wayback Machine back-fill is a spider (``rsarchive.spiders.wayback``).
"""

from __future__ import annotations

#: WARC headers of our own: what a load-more answer's capture needs besides the HTTP exchange
#: (``captures.feed_page_url`` etc.), and the URL first asked for when a redirect was followed.
#: ``rsarchive import`` reads them back, so an exported archive re-imports as it was.
FEED_PAGE_URL = "WARC-X-Rsarchive-Feed-Page-Url"
FEED_POSITION = "WARC-X-Rsarchive-Feed-Position"
FEED_REPEATS = "WARC-X-Rsarchive-Feed-Repeats"
REQUESTED_URL = "WARC-X-Rsarchive-Requested-Url"
