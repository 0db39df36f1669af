"""The archive database: schema, engine set-up, writes and queries. Knows nothing of Scrapy."""

from __future__ import annotations

from .engine import create_schema, make_engine
from .models import utc_now_iso
from .schema import SchemaError, check_schema
from .store import Archive, StoreResult
from .writes import content_hash

__all__ = [
    "Archive",
    "SchemaError",
    "StoreResult",
    "check_schema",
    "content_hash",
    "create_schema",
    "make_engine",
    "utc_now_iso",
]
