"""A pipeline step with a bug that shows on one page only (T47): the crawl must go on."""

from __future__ import annotations

from typing import Any


class FailOnOnePage:
    """Raises on the page whose URL contains ``FAULT_FAIL_ON`` (a setting), as a real bug
    would: an exception no step expected."""

    def __init__(self, part: str) -> None:
        self.part = part

    @classmethod
    def from_crawler(cls, crawler: Any) -> FailOnOnePage:
        return cls(crawler.settings.get("FAULT_FAIL_ON", ""))

    def process_item(self, item: Any) -> Any:
        if self.part and self.part in getattr(item, "url", ""):
            raise KeyError(f"no such key on {item.url}")
        return item
