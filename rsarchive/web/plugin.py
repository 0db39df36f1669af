"""The Datasette plugin of `rsarchive serve`: stored HTML shown safely, a strict CSP on every page.

Stored ``body_html`` is already sanitised when it is written; here it is sanitised again with the
same nh3 allow-list before it reaches a page (defence in depth: an archive file may come from an
older version or another tool). Every response carries a Content-Security-Policy that allows only
Datasette's own static scripts and the few inline scripts its templates hold, by hash. The
``search`` canned query reads its query with the search rules of ``rsarchive search``
(``rs_fts_query``, a SQL function on every connection).

Pages: the row page of ``articles`` reads as the article (``article.py``, ``templates/row.html``);
the index and database pages lead with search, the newest articles and charts (``charts.py``);
a table search of ``articles``/``article_list`` is answered, ranked, by the ``search`` query.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import sqlite3
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from pathlib import Path
from typing import Any

import datasette
import datasette.handle_exception
import jinja2
import jinja2.meta
import markupsafe
from datasette import hookimpl

from rsarchive.archive.opening import BadQuery, NotFound
from rsarchive.archive.searchquery import fts_query

from .article import Links, article_page, body_markup, reader_date, reader_for
from .charts import archive_charts

# py-wacz (rsarchive export --format wacz) brings in rich (frictionless -> typer). With rich
# importable, Datasette 0.65's default error page prints a rich traceback outside an except
# block, which raises: every 404 became a bare 500 without the security headers below. Only that
# console traceback is given up.
datasette.handle_exception.rich = None

HTML_COLUMNS = frozenset({"body_html"})
SNIPPET_COLUMN = "snippet"
#: The SQL function turning what a user typed into an FTS5 query (``searchquery.fts_query``).
FTS_QUERY_FUNCTION = "rs_fts_query"
#: Where the plugin's stylesheet is served (``make_datasette`` mounts ``static/`` there).
STATIC_MOUNT = "rsarchive-static"

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


def content_security_policy(*, images: bool = False, site_url: str | None = None) -> str:
    """The policy sent with every response; with ``images``, article images load from the
    archived site and other https hosts (the reader's browser then asks those hosts)."""
    policy = dict(_POLICY)
    if images:
        origin = urllib.parse.urlsplit(site_url or "")
        site = f" {origin.scheme}://{origin.netloc}" if origin.netloc else ""
        policy["img-src"] = f"{policy['img-src']} https:{site}"
    policy["script-src"] = " ".join(("'self'", *datasette_inline_script_hashes()))
    return "; ".join(f"{k} {v}" for k, v in policy.items())


def security_headers(
    *, images: bool = False, site_url: str | None = None
) -> list[tuple[bytes, bytes]]:
    policy = content_security_policy(images=images, site_url=site_url)
    return [
        (b"content-security-policy", policy.encode("ascii")),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]


def render_html_cell(value: str) -> markupsafe.Markup:
    """Stored article HTML, sanitised again (the last step), in a scrolling box."""
    return markupsafe.Markup(
        '<div class="rsarchive-body" style="max-height: 24em; overflow: auto; '
        'max-width: 48em; white-space: normal">{}</div>'
    ).format(body_markup(value, images=False))


def render_snippet(value: str) -> markupsafe.Markup:
    """An FTS5 snippet: all text escaped, then only the <mark> tags snippet() added restored."""
    escaped = str(markupsafe.escape(value))
    return markupsafe.Markup(
        escaped.replace("&lt;mark&gt;", "<mark>").replace("&lt;/mark&gt;", "</mark>")
    )


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    # BadQuery (an unbalanced quote, nothing to search for) fails the query: Datasette shows its
    # error page (HTTP 400), with the reason from extra_template_vars below.
    conn.create_function(FTS_QUERY_FUNCTION, 1, fts_query, deterministic=True)


def search_error(request: Any) -> dict[str, str] | None:
    """On the search page, why ``rs_fts_query`` refused the query (SQLite's own message for an
    exception in a Python function says only that one was raised)."""
    if "q" not in request.args or not request.path.rstrip("/").endswith("/search"):
        return None
    q = request.args.get("q", "")
    if not q.strip():
        return None
    try:
        fts_query(q)
    except BadQuery as exc:
        return {"error": f"Search query: {exc}"}
    return None


#: The newest articles the index and database pages lead with.
NEWEST_SQL = """
select id, title, section, type, authors, published_at from article_list
order by published_at desc, id desc limit :n"""
NEWEST_COUNT = 15


async def _lead(datasette: Any, database: str) -> dict[str, Any]:
    """What the database page (and the index) lead with: search, the newest articles, charts."""
    db = datasette.get_database(database)
    newest = [
        {**dict(zip(r.keys(), r, strict=True)), "day": reader_date(r["published_at"])}
        for r in (await db.execute(NEWEST_SQL, {"n": NEWEST_COUNT})).rows
    ]
    total = (await db.execute("select count(*) from articles")).first()[0]
    base = datasette.urls.database(database)
    return {
        "rs_lead": {
            "database": database,
            "search_url": f"{base}/search",
            "list_url": f"{base}/article_list",
            "article_base": f"{base}/articles",
            "newest": newest,
            "total": total,
            "charts": await archive_charts(db),
        }
    }


async def _article(datasette: Any, database: str, request: Any) -> dict[str, Any]:
    pks = request.url_vars.get("pks", "")
    if not pks.isdigit():
        return {}
    db = datasette.get_database(database)
    reader = reader_for(str(db.path))
    links = Links(datasette.urls.database(database))
    images = remote_images(datasette)
    try:
        page = await asyncio.to_thread(article_page, reader, int(pks), links, images=images)
    except NotFound:
        return {}  # Datasette's own 404 follows
    return {"rs_article": page, "rs_images": images}


@hookimpl
def extra_template_vars(
    template: str, database: str | None, table: str | None, request: Any, datasette: Any
) -> Any:
    if request is None:
        return None
    if template.startswith("query"):
        return search_error(request)
    if template.startswith("row") and table == "articles" and database:
        if request.args.get("_raw"):
            return None
        return _article(datasette, database, request)
    if template.startswith("database") and database:
        return _lead(datasette, database)
    if template.startswith("index"):
        names = [n for n in datasette.databases if n != "_internal"]
        return _lead(datasette, names[0]) if len(names) == 1 else None
    return None


@hookimpl
def extra_css_urls(datasette: Any) -> list[str]:
    return [datasette.urls.path(f"/{STATIC_MOUNT}/rsarchive.css")]


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> markupsafe.Markup | None:
    if not isinstance(value, str):
        return None
    if column in HTML_COLUMNS:
        return render_html_cell(value)
    if table is None:  # query results: the search canned query
        if column == SNIPPET_COLUMN and "<mark>" in value:
            return render_snippet(value)
        if column == "title" and _has(row, "id") and _has(row, "snippet"):
            href = f"{datasette.urls.database(database)}/articles/{row['id']}"
            return markupsafe.Markup('<a href="{}">{}</a>').format(href, value)
    return None


def _has(row: Any, key: str) -> bool:
    try:
        return key in row.keys()  # noqa: SIM118 (sqlite3.Row: `in` looks at values)
    except AttributeError:
        return False


def remote_images(datasette: Any) -> bool:
    """Whether article pages show images from their own hosts (``serve --no-images``: not)."""
    return bool((datasette.plugin_config("rsarchive") or {}).get("images", True))


ASGIApp = Callable[..., Awaitable[None]]


#: Table pages whose search box is answered by the ranked ``search`` query.
RANKED_TABLES = ("articles", "article_list")


def ranked_search_redirect(scope: MutableMapping[str, Any]) -> str | None:
    """Where a table search of ``articles``/``article_list`` goes to be ranked by relevance:
    the ``search`` canned query, when the search is all that was asked (no sort, no facet)."""
    parts = scope["path"].rstrip("/").split("/")
    if len(parts) < 3 or parts[-1] not in RANKED_TABLES:
        return None
    args = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
    search = (args.get("_search") or [""])[0]
    if not search.strip() or set(args) - {"_search"}:
        return None
    base = "/".join(parts[:-1])
    return f"{base}/search?{urllib.parse.urlencode({'q': search})}"


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[ASGIApp], ASGIApp]:
    config = datasette.plugin_config("rsarchive") or {}
    headers = security_headers(
        images=bool(config.get("images", True)), site_url=config.get("site_url")
    )
    ours = {name for name, _ in headers}

    def wrap(app: ASGIApp) -> ASGIApp:
        async def with_headers(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            target = ranked_search_redirect(scope)
            if target is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 302,
                        "headers": [(b"location", target.encode("latin-1")), *headers],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return

            async def send_with_headers(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in ours]
                    message = {**message, "headers": kept + headers}
                await send(message)

            await app(scope, receive, send_with_headers)

        return with_headers

    return wrap
