"""The Datasette plugin of `rsarchive serve`: stored HTML shown safely, a strict CSP on every page.

Stored ``body_html`` is already sanitised when it is written; here it is sanitised again with the
same nh3 allow-list before it reaches a page (defence in depth: an archive file may come from an
older version or another tool). Every response carries a Content-Security-Policy that allows only
Datasette's own static scripts and the few inline scripts its templates hold, by hash. The
``search`` canned query reads its query with the search rules of ``rsarchive search``
(``rs_fts_query``, a SQL function on every connection).
"""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from pathlib import Path
from typing import Any

import datasette
import jinja2
import jinja2.meta
import lxml.html
import markupsafe
from datasette import hookimpl

from rsarchive.archive.queries import BadQuery, fts_query
from rsarchive.extract.text import sanitize_html

HTML_COLUMNS = frozenset({"body_html"})
SNIPPET_COLUMN = "snippet"
#: The SQL function turning what a user typed into an FTS5 query (``queries.fts_query``).
FTS_QUERY_FUNCTION = "rs_fts_query"

# Template variables that an inline script of Datasette's templates may hold, with every value
# Datasette renders there: each rendering gets its own hash.
_SCRIPT_VARIABLES: dict[str, tuple[str, ...]] = {"datasette_allow_facet": ("true", "false")}
_INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S)

# Every directive that the policy does not name falls back to default-src 'none'.
_POLICY = {
    "default-src": "'none'",
    # Inline style attributes are part of Datasette's templates (page colours, textarea size);
    # styles cannot run code, and stored HTML keeps no style attribute.
    "style-src": "'self' 'unsafe-inline'",
    # Only the archive's own pages: article images stay on their hosts (no request leaves the
    # reader's browser for a third party).
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "object-src": "'none'",
}


@cache
def datasette_inline_script_hashes() -> tuple[str, ...]:
    """CSP hash sources for every inline script in the installed Datasette's templates."""
    templates = Path(datasette.__file__).parent / "templates"
    # keep_trailing_newline: the hash covers the script text exactly as the page holds it.
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True)
    hashes: set[str] = set()
    for path in sorted(templates.rglob("*.html")):
        for match in _INLINE_SCRIPT.finditer(path.read_text(encoding="utf-8")):
            if "src=" in match["attrs"]:
                continue
            body = match["body"]
            names = jinja2.meta.find_undeclared_variables(env.parse(body))
            if not names <= _SCRIPT_VARIABLES.keys():
                continue  # plugin-provided (extra_body_script): rsarchive adds none
            for values in _combinations([_SCRIPT_VARIABLES[n] for n in sorted(names)]):
                rendered = env.from_string(body).render(
                    dict(zip(sorted(names), values, strict=True))
                )
                digest = hashlib.sha256(rendered.encode("utf-8")).digest()
                hashes.add(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")
    return tuple(sorted(hashes))


def _combinations(choices: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for options in choices:
        combos = [(*c, o) for c in combos for o in options]
    return combos


def content_security_policy() -> str:
    """The policy sent with every response."""
    policy = dict(_POLICY)
    policy["script-src"] = " ".join(("'self'", *datasette_inline_script_hashes()))
    return "; ".join(f"{k} {v}" for k, v in policy.items())


def security_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", content_security_policy().encode("ascii")),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]


def images_as_links(html: str) -> str:
    """Each ``<img>`` replaced by a link to it: the policy loads no image from other hosts."""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for img in list(root.iter("img")):
        link = lxml.html.Element("a", href=img.get("src") or "")
        link.text = f"[image: {img.get('alt') or img.get('src') or ''}]"
        link.tail = img.tail
        img.getparent().replace(img, link)
    return (root.text or "") + "".join(
        lxml.html.tostring(child, encoding="unicode") for child in root
    )


def render_html_cell(value: str) -> markupsafe.Markup:
    """Stored article HTML, sanitised again (the last step), in a scrolling box."""
    return markupsafe.Markup(
        '<div class="rsarchive-body" style="max-height: 24em; overflow: auto; '
        'max-width: 48em; white-space: normal">{}</div>'
    ).format(markupsafe.Markup(sanitize_html(images_as_links(value))))


def render_snippet(value: str) -> markupsafe.Markup:
    """An FTS5 snippet: all text escaped, then only the <mark> tags snippet() added restored."""
    escaped = str(markupsafe.escape(value))
    return markupsafe.Markup(
        escaped.replace("&lt;mark&gt;", "<mark>").replace("&lt;/mark&gt;", "</mark>")
    )


@hookimpl
def render_cell(value: Any, column: str, table: str | None) -> markupsafe.Markup | None:
    if not isinstance(value, str):
        return None
    if column in HTML_COLUMNS:
        return render_html_cell(value)
    # Only in query results (table is None): the search canned query's snippet column.
    if table is None and column == SNIPPET_COLUMN and "<mark>" in value:
        return render_snippet(value)
    return None


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    # BadQuery (an unbalanced quote, nothing to search for) fails the query: Datasette shows its
    # error page (HTTP 400), with the reason from extra_template_vars below.
    conn.create_function(FTS_QUERY_FUNCTION, 1, fts_query, deterministic=True)


@hookimpl
def extra_template_vars(template: str, request: Any) -> dict[str, str] | None:
    """On the search page, why ``rs_fts_query`` refused the query (SQLite's own message for an
    exception in a Python function says only that one was raised)."""
    if request is None or not template.startswith("query") or "q" not in request.args:
        return None
    if not request.path.rstrip("/").endswith("/search"):
        return None
    q = request.args.get("q", "")
    if not q.strip():
        return None
    try:
        fts_query(q)
    except BadQuery as exc:
        return {"error": f"Search query: {exc}"}
    return None


ASGIApp = Callable[..., Awaitable[None]]


@hookimpl
def asgi_wrapper() -> Callable[[ASGIApp], ASGIApp]:
    headers = security_headers()
    ours = {name for name, _ in headers}

    def wrap(app: ASGIApp) -> ASGIApp:
        async def with_headers(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_with_headers(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
                    message = {**message, "headers": kept + headers}
                await send(message)

            await app(scope, receive, send_with_headers)

        return with_headers

    return wrap
