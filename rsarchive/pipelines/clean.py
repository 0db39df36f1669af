"""Clean step: validate a split page and drop, with a logged reason, what is not archivable."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import logformatter
from scrapy.exceptions import DropItem

from rsarchive.dates import latest_plausible, plausible
from rsarchive.items import Article, Page, Teaser
from rsarchive.urls import normalize_url, page_identity, same_site

logger = logging.getLogger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml")


class NotArchivable(DropItem):
    """A page dropped for a reason worth a stat: ``key`` names the reason."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class CleanPipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.site_url = crawler.settings.get("RSARCHIVE_SITE_URL")

    @classmethod
    def from_crawler(cls, crawler: Any) -> CleanPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Page):
            return item
        try:
            self._check(item)
        except NotArchivable as exc:
            self.stats.inc_value(f"rsarchive/dropped/{exc.key}")
            raise
        if item.article is not None:
            self._identify(item, item.article)
        latest = latest_plausible(item.fetched_at)
        if item.article is not None:
            self._dates(item.article, item.url, latest, ("published_at", "modified_at"))
        own = {normalize_url(item.url), item.article.url if item.article else ""}
        seen: set[str] = set()
        teasers = []
        for teaser in item.teasers:
            if teaser.url in seen:
                continue
            if teaser.url in own:
                # A link to the page itself (a "Latest" list repeating it) is not a teaser.
                self.stats.inc_value("rsarchive/teasers_self")
                continue
            if not same_site(teaser.url, self.site_url):
                self.stats.inc_value("rsarchive/teasers_offsite")
                continue
            seen.add(teaser.url)
            self._dates(teaser, item.url, latest, ("published_at",))
            teasers.append(teaser)
        item.teasers = teasers
        return item

    def _identify(self, page: Page, article: Article) -> None:
        """Key the article by its canonical URL only when that is the page's own address."""
        article.url, declared = page_identity(article.url, page.url)
        if declared is None:
            return
        article.declared_canonical = declared
        logger.warning(
            "%s declares canonical %s, another page: stored under its own URL, the declared "
            "one kept in articles.declared_canonical",
            page.url,
            declared,
        )
        self.stats.inc_value("rsarchive/canonical_conflict")

    def _dates(self, item: Article | Teaser, url: str, latest: str, fields: tuple) -> None:
        """A date before 1990 or after the fetch (+2 days) is unknown (None); the raw string
        found on the page is kept beside it."""
        for name in fields:
            value = getattr(item, name)
            if value is None or plausible(value, latest):
                continue
            raw = getattr(item, f"{name}_raw", None)
            logger.warning(
                "implausible date %s (%s) on %s: stored as unknown, the raw string kept",
                raw or value,
                name,
                url,
            )
            self.stats.inc_value("rsarchive/implausible_date")
            setattr(item, name, None)

    def _check(self, page: Page) -> None:
        if page.status >= 400:
            raise NotArchivable(f"http_{page.status}", f"HTTP {page.status}")
        if not same_site(page.url, self.site_url):
            raise NotArchivable("offsite", "redirected off the configured site")
        ctype = (page.content_type or "").split(";")[0].strip().lower()
        if ctype and ctype not in _HTML_TYPES:
            raise NotArchivable("not_html", f"not an HTML page ({ctype})")
        if not page.body.strip():
            raise NotArchivable("empty", "empty body")
        if page.selector is None:
            raise NotArchivable("not_html", "not an HTML page")
        if page.article is not None and not page.article.title.strip():
            raise NotArchivable("no_headline", "the main article has no headline")
        if page.article is None and not page.teasers:
            raise NotArchivable("no_content", "neither a main article nor keep-reading teasers")


class PageLogFormatter(logformatter.LogFormatter):
    """Name the page and the reason; never dump a whole page item into the log."""

    def dropped(self, item: Any, exception: BaseException, response: Any, spider: Any) -> Any:
        result = super().dropped(item, exception, response, spider)
        return _by_url(result, item, "Dropped %(url)s: %(exception)s", exception)

    def item_error(self, item: Any, exception: BaseException, response: Any, spider: Any) -> Any:
        result = super().item_error(item, exception, response, spider)
        return _by_url(result, item, "Error processing %(url)s: %(exception)r", exception)

    def scraped(self, item: Any, response: Any, spider: Any) -> Any:
        result = super().scraped(item, response, spider)
        if isinstance(item, Page):
            result["msg"] = "Archived %(url)s: %(article)s, %(teasers)d teasers"
            result["args"] = {
                "url": item.url,
                "article": repr(item.article.title) if item.article else "no main article",
                "teasers": len(item.teasers),
            }
        return result


def _by_url(result: Any, item: Any, msg: str, exception: BaseException) -> Any:
    """A log entry naming the page by its URL instead of the whole item."""
    if isinstance(item, Page):
        result["msg"] = msg
        result["args"] = {"url": item.url, "exception": exception}
    return result
