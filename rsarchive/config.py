"""Reading the RSARCHIVE_* settings: parsed where they are used, with an error naming the key.

``rsarchive/settings.py`` holds every default and takes environment values as given (strings),
so a bad value never breaks an import; the component that uses a key parses it through these
functions, which raise ``SettingError`` saying which key is wrong and why.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


class SettingError(ValueError):
    """A setting rsarchive cannot use; the message names it (one line, for the log and stderr)."""


def get_int(settings: Any, name: str, *, minimum: int | None = None) -> int:
    """The whole number of setting ``name`` (an int or a string such as ``"20"``)."""
    try:
        value = settings.getint(name)
    except (TypeError, ValueError):
        raise SettingError(f"{name}={settings.get(name)!r} is not a whole number") from None
    return _at_least(name, value, minimum)


def get_float(settings: Any, name: str, *, minimum: float | None = None) -> float:
    """The number of setting ``name`` (a number or a string such as ``"24"`` or ``"0.5"``)."""
    try:
        value = settings.getfloat(name)
    except (TypeError, ValueError):
        raise SettingError(f"{name}={settings.get(name)!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):  # nan, inf
        raise SettingError(f"{name}={settings.get(name)!r} is not a finite number")
    return _at_least(name, value, minimum)


def _at_least(name: str, value: Any, minimum: Any) -> Any:
    if minimum is not None and value < minimum:
        raise SettingError(f"{name}={value!r} is below {minimum}")
    return value


def get_site_url(settings: Any, name: str = "RSARCHIVE_SITE_URL") -> str:
    """The site to archive: an http(s) URL with a host, without a trailing slash."""
    raw = settings.get(name)
    value = (raw or "").strip().rstrip("/")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError(
            f"{name}={raw!r} is not a site URL: give its scheme and host, "
            "e.g. https://responsiblestatecraft.org"
        )
    return value
