"""URL normalisation and site membership: one definition shared by spiders, parser and archive."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit, urlunsplit

from w3lib.url import safe_url_string, url_query_cleaner

# Query parameters that identify a visitor or a campaign, never a page.
TRACKING_PARAMS = (
    "fbclid",
    "gclid",
    "dclid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "ref",
    "ref_src",
    "rebelltitem",
)
_UTM = re.compile(r"(?:^|&)utm_[^=&]*(?:=[^&]*)?", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ABSOLUTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# Already percent-encoded ASCII with nothing w3lib would change: skip safe_url_string.
_SAFE = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")


def normalize_url(url: str, base: str | None = None) -> str:
    # Pages repeat the same author, tag and post links; the cache makes repeats free. An
    # absolute URL does not depend on its base, so it is cached without it: otherwise every page
    # (a base of its own) would miss on the teaser and author links all pages share.
    url = url.strip()
    if base and _ABSOLUTE.match(url):
        base = None
    return _normalize(url, base)


@lru_cache(maxsize=16384)
def _normalize(url: str, base: str | None) -> str:
    """Return the archive's key for ``url``.

    Lower-case scheme and host, no default port, no fragment, no tracking parameters
    (``utm_*``, ``fbclid``, ...), no trailing slash (``/2021/05/19/slug/`` and
    ``/2021/05/19/slug`` are the same post), an AMP copy (``/amp/<slug>``) folded into the
    post itself. Relative URLs are resolved against ``base``.
    """
    if base and not _ABSOLUTE.match(url):
        url = urljoin(base, url)
    if not _SAFE.match(url):
        url = safe_url_string(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    netloc = host
    if parts.port and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{parts.port}"
    path = parts.path or "/"
    if path.startswith("/amp/"):
        path = path[4:]
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = _UTM.sub("", parts.query).lstrip("&")
    if query:
        query = url_query_cleaner(
            f"?{query}", TRACKING_PARAMS, remove=True, unique=False, keep_fragments=False
        ).lstrip("?")
    return urlunsplit((scheme, netloc, path, query, ""))


# A URL that names its host: ``urljoin`` then takes nothing from the base but its scheme.
_HAS_HOST = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#\s]")


def join_url(base: str, url: str) -> str:
    """``urljoin(base, url)``, cached for a URL that names its host (image URLs, repeated on
    every page that shows the same teasers): only the base's scheme can change that result."""
    if base and _HAS_HOST.match(url):
        return _join_hosted(_scheme(base), url)
    return urljoin(base, url)


@lru_cache(maxsize=64)
def _scheme(base: str) -> str:
    return urlsplit(base).scheme


@lru_cache(maxsize=4096)
def _join_hosted(scheme: str, url: str) -> str:
    return urljoin(f"{scheme}://host/", url)


def site_host(site_url: str) -> str:
    """``host`` or ``host:port`` of the configured site, as ``normalize_url`` writes it."""
    return urlsplit(normalize_url(site_url)).netloc


def same_site(url: str, site_url: str) -> bool:
    """True when ``url`` is on the configured site (``www.`` and scheme do not matter)."""
    a = urlsplit(normalize_url(url)).netloc.removeprefix("www.")
    b = site_host(site_url).removeprefix("www.")
    return bool(a) and a == b


def is_home(url: str) -> bool:
    """True for the site's home page (a canonical pointing there is a template default)."""
    parts = urlsplit(normalize_url(url))
    return parts.path in ("", "/") and not parts.query


def page_identity(declared: str, fetched: str) -> tuple[str, str | None]:
    """The archive key of a page fetched at ``fetched`` that declares the canonical URL
    ``declared``, and the declared URL when it names another page (kept for review).

    A canonical that is the page's own address (after normalisation, ``www.`` and scheme
    aside) is the key, as the site means it. One that names another page is not trusted: a page
    must never take another URL's place in the archive, so it is kept under its own URL.
    """
    own = normalize_url(fetched)
    key = normalize_url(declared)
    a, b = urlsplit(key), urlsplit(own)
    same = a.netloc.removeprefix("www.") == b.netloc.removeprefix("www.") and (a.path, a.query) == (
        b.path,
        b.query,
    )
    return (key, None) if same else (own, key)
