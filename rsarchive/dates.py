"""Which dates to believe: the plausible window for a date read from the site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# None of the site's posts predates this, and none is published more than a couple of days
# (time zones, scheduled posts) after it is fetched: a date outside is misread or made up.
OLDEST_DATE = "1990-01-01T00:00:00Z"
FUTURE_SLACK = timedelta(days=2)


def latest_plausible(fetched_at: str | None = None) -> str:
    """The latest plausible date (ISO 8601 UTC) for a page fetched at ``fetched_at`` (now if
    None or unreadable)."""
    try:
        when = datetime.fromisoformat((fetched_at or "").replace("Z", "+00:00"))
    except ValueError:
        when = datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when + FUTURE_SLACK).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plausible(iso: str, latest: str) -> bool:
    """Whether ``iso`` (ISO 8601 UTC, or a bare day) lies between 1990 and ``latest``."""
    return OLDEST_DATE <= iso <= latest
