"""Split step: a fetched Page becomes its main Article (or none) plus its keep-reading Teasers."""

from __future__ import annotations

import logging
from typing import Any

from rsarchive.extract import parse_page, rebelmouse
from rsarchive.items import Page

logger = logging.getLogger(__name__)


class SplitPipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> SplitPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        # Only HTML pages are parsed; clean drops the rest with a reason.
        if not isinstance(item, Page) or item.selector is None or not item.body:
            return item
        parsed = parse_page(item.selector, item.url)
        for field in parsed.drift:
            if field == "whole_page":
                logger.warning(
                    "layout_drift: no RebelMouse post block on %s: read by the generic extractor",
                    item.url,
                )
            else:
                logger.warning(
                    "layout_drift: %s came from a fallback selector on %s", field, item.url
                )
            self.stats.inc_value("rsarchive/layout_drift")
            self.stats.inc_value(f"rsarchive/layout_drift/{field}")
        for warning in parsed.warnings:
            logger.info("%s on %s", warning, item.url)
            self.stats.inc_value(f"rsarchive/page_warning/{warning}")
        item.article = parsed.article
        # Read at call time: a re-parse under a new parser version records that version.
        item.parser_version = rebelmouse.PARSER_VERSION
        item.teasers = parsed.teasers
        return item
