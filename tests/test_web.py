"""`rsarchive serve`: the archive in Datasette, checked over HTTP and in a real headless browser.

The archive is built by crawling the fixture site over loopback HTTP; the server is the real
command in its own process, stopped by the test. The browser is Debian's chromium, installed by
the session fixture when missing (root and a package mirror needed; skipped otherwise, except in
CI where it fails).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ARTIFACT_LINES, ROOT, running_site, scrapy_crawl

from rsarchive.archive import Archive
from rsarchive.cli import EXIT_CONFIG, EXIT_DB, main
from rsarchive.web.metadata import QUERIES, TABLES

ARTIFACTS = ROOT / "test-artifacts"
SEED_TITLE = "What to make of the Blinken-Lavrov 'showdown' in Iceland"
SEED_TITLE_HTML = SEED_TITLE.replace("'", "&#39;")  # as Jinja escapes it
# Written straight into body_html, past the store's sanitiser (an archive made by an older or
# another tool): none of it may reach a page as markup that runs.
SMUGGLED = (
    '<p>Smuggled paragraph.</p><script>document.documentElement.setAttribute("data-pwned", '
    '"script")</script><img src="x" onerror="document.documentElement.setAttribute('
    "'data-pwned', 'onerror')\"><a href=\"javascript:alert(1)\">link</a>"
)


# -- metadata ---------------------------------------------------------------------------------


def schema_columns(tmp_path: Path) -> dict[str, list[str]]:
    """Every table and view of a new archive (but SQLite's and FTS5's own), with its columns."""
    db = tmp_path / "schema.db"
    Archive(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                " AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'articles_fts_%'"
            )
        ]
        return {n: [r[1] for r in conn.execute(f"PRAGMA table_info({n})")] for n in names}


def test_every_table_view_and_column_has_a_description(tmp_path):
    schema = schema_columns(tmp_path)
    assert "article_list" in schema and "articles_fts" in schema
    missing = {
        name: [c for c in cols if not TABLES.get(name, ("", {}))[1].get(c)]
        for name, cols in schema.items()
    }
    assert {n: c for n, c in missing.items() if c} == {}, (
        "describe these in rsarchive/web/metadata.py"
    )
    assert all(TABLES[name][0] for name in schema)
    # And nothing described that is not there (a renamed column).
    stale = {n: set(cols) - set(schema.get(n, [])) for n, (_, cols) in TABLES.items()}
    assert {n: c for n, c in stale.items() if c} == {}


# -- the command's refusals (in process: they stop before any server starts) ------------------


def test_serve_without_datasette_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "datasette", None)  # `import datasette` now fails
    assert main(["serve", "--db", str(tmp_path / "x.db")]) == EXIT_CONFIG == 78
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "pip install 'rsarchive[web]'" in err


@pytest.mark.parametrize(
    ("db", "code", "message"),
    [
        ("missing.db", EXIT_DB, "no archive database at"),
        ("postgresql://u@localhost/rs", EXIT_CONFIG, "SQLite files only, not postgresql"),
        ("sqlite://", EXIT_CONFIG, "in-memory database cannot be served"),
        ("notes.txt", EXIT_CONFIG, "is not an rsarchive archive (not a SQLite file)"),
        ("other.db", EXIT_CONFIG, "is not an rsarchive archive"),
    ],
)
def test_serve_refuses_what_is_not_an_archive_file(
    tmp_path, monkeypatch, capsys, db, code, message
):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("not a database\n" * 100)
    with sqlite3.connect("other.db") as conn:
        conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    assert main(["serve", "--db", db]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_serve_refuses_a_port_in_use(tmp_path, capsys):
    import socket

    db = tmp_path / "a.db"
    Archive(f"sqlite:///{db}").close()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--db", str(db), "--port", str(port)]) == EXIT_CONFIG
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


# -- a served archive -------------------------------------------------------------------------


@dataclass
class Served:
    url: str  # the database's page, e.g. http://127.0.0.1:PORT/web
    db: Path
    site_url: str  # the crawled site's origin: the archive's URLs start with it
    smuggled_id: int
    db_sha256: str

    def get(self, path: str, **params: str) -> tuple[int, dict[str, str], str]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode("utf-8")

    def get_root(self, path: str) -> tuple[int, dict[str, str], str]:
        """A path from the server's root (the index, static files), not the database's."""
        root = self.url.rsplit("/", 1)[0]
        with urllib.request.urlopen(f"{root}{path}", timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8")

    def json(self, path: str, **params: str) -> dict:
        status, _, body = self.get(f"{path}.json", **params)
        assert status == 200, body
        return json.loads(body)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_server(db: Path, site_url: str | None = None) -> tuple[subprocess.Popen, str]:
    """`rsarchive serve` on a free loopback port; returns the process and the URL it prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    if site_url:
        env["RSARCHIVE_SITE_URL"] = site_url  # article images load from the (loopback) site
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsarchive.cli", "serve", "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout=60)
    line = proc.stdout.readline() if ready else ""
    match = re.search(r"read-only at (http://127\.0\.0\.1:\d+/\S+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"no server: {line!r} {proc.communicate(timeout=10)}")
    return proc, match.group(1)


#: A picture the loopback site answers for every article image (the fixtures hold none).
PICTURE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="600" viewBox="0 0 1200 600">'
    b'<rect width="1200" height="600" fill="#8fa9bd"/><circle cx="600" cy="300" r="160" '
    b'fill="#dfe8ef"/></svg>'
)
#: The seed article's next version (a second revision, as a recrawl after an edit stores it).
EDIT_FROM, EDIT_TO = "met Wednesday in a sideline meeting", "met on Wednesday for a long meeting"


def add_edited_revision(db: Path, title: str) -> None:
    """A newer revision of an article with one sentence edited."""
    with sqlite3.connect(db) as conn:
        (article_id,) = conn.execute("SELECT id FROM articles WHERE title = ?", (title,)).fetchone()
        cols = [r[1] for r in conn.execute("PRAGMA table_info(revisions)") if r[1] != "id"]
        row = dict(
            zip(
                cols,
                conn.execute(
                    f"SELECT {', '.join(cols)} FROM revisions WHERE article_id = ?"
                    " ORDER BY id DESC LIMIT 1",
                    (article_id,),
                ).fetchone(),
                strict=True,
            )
        )
        if row["body_text"] is None:  # the current version's body is the article's (0007)
            (row["body_text"],) = conn.execute(
                "SELECT body_text FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
        assert EDIT_FROM in row["body_text"]
        row["body_text"] = row["body_text"].replace(EDIT_FROM, EDIT_TO)
        row["captured_at"] = "2030-01-02T03:04:05Z"
        row["content_hash"] = "edited"
        conn.execute(
            f"INSERT INTO revisions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )


@pytest.fixture(scope="module")
def served(fixture_site, tmp_path_factory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("web") / "web.db"
    with running_site(fixture_site) as site:
        urls = ",".join(site.page_url(page.name) for page in fixture_site.pages.values())
        crawl = scrapy_crawl("article", db, site.url, "-a", f"urls={urls}")
        site_url = site.url
        assert crawl.returncode == 0, crawl.log
        with sqlite3.connect(db) as conn:
            (smuggled_id,) = conn.execute(
                "SELECT id FROM articles WHERE title = 'Finland and Sweden are redrawing Europe’s"
                " security map'"
            ).fetchone()
            conn.execute("UPDATE articles SET body_html = ? WHERE id = ?", (SMUGGLED, smuggled_id))
            images = [r[0] for r in conn.execute("SELECT url FROM article_images")]
            images += [r[0] for r in conn.execute("SELECT image_url FROM articles")]
        for image in filter(None, images):
            path = urllib.parse.urlsplit(image).path
            site.handlers[path] = lambda _: (200, {"Content-Type": "image/svg+xml"}, PICTURE)
        add_edited_revision(db, SEED_TITLE)
        before = sha256_of(db)
        proc, url = start_server(db, site_url)
        try:
            yield Served(url, db, site_url, smuggled_id, before)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # Stopped by SIGTERM: uvicorn shuts down gracefully, then ends by that signal.
    assert proc.returncode == -signal.SIGTERM, proc.stderr.read() if proc.stderr else ""


def test_search_canned_query_ranks_and_highlights(served):
    rows = served.json("/search", q="Lavrov OR Iraq", _shape="objects")["rows"]
    titles = [r["title"] for r in rows]
    assert SEED_TITLE in titles
    assert "US strikes in Iraq show risk of escalation to wider war" in titles
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)  # bm25: best first
    seed = next(r for r in rows if r["title"] == SEED_TITLE)
    assert "<mark>Lavrov</mark>" in seed["snippet"]
    assert seed["authors"] == "Anatol Lieven"
    # On the HTML page the marks are real elements, everything else in the snippet escaped.
    status, _, html = served.get("/search", q="Iceland")
    assert status == 200
    results = html.split('<table class="rows-and-columns">', 1)[1]
    assert "<mark>Iceland</mark>" in results and "&lt;mark&gt;" not in results


def test_search_canned_query_follows_the_search_rules_of_rsarchive_search(served):
    """A word with punctuation is the phrase of its parts, as for `rsarchive search`."""
    for q in ("Blinken-Lavrov", "U.S.-Russian", 'title:Blinken-Lavrov "showdown"'):
        rows = served.json("/search", q=q, _shape="objects")["rows"]
        assert [r["title"] for r in rows] == [SEED_TITLE], q
    # No article says "U.S.-Iran": an answer without rows, not FTS5's "syntax error near '.'".
    doc = served.json("/search", q="U.S.-Iran", _shape="objects")
    assert doc["ok"] is True and doc["rows"] == []
    assert served.json("/search", q="", _shape="objects")["rows"] == []


def test_a_malformed_search_gets_datasettes_error_page_with_the_reason(served):
    status, _, html = served.get("/search", q='"unbalanced')
    assert status == 400
    assert '<p class="message-error">Search query: unbalanced &#34; in the search query</p>' in html
    assert "Traceback" not in html
    status, _, html = served.get("/search", q="iran NOT")  # what FTS5 would refuse, in words
    assert status == 400
    assert "Search query: NOT needs a search after it (iran NOT nuclear)" in html
    status, _, body = served.get("/search.json", q='"unbalanced')
    assert status == 400 and json.loads(body)["ok"] is False


def test_tables_have_a_search_box_wired_to_the_index(served):
    for table in ("articles", "article_list"):
        rows = served.json(f"/{table}", _search="Reykjavik OR Iceland", _shape="objects")["rows"]
        assert [r["title"] for r in rows] == [SEED_TITLE], table
        status, _, html = served.get(f"/{table}")
        assert status == 200 and 'name="_search"' in html


def test_facets_on_section_type_and_authors(served):
    data = served.json("/article_list", _shape="objects")
    facets = {
        name: {r["value"]: r["count"] for r in f["results"]}
        for name, f in data["facet_results"].items()
    }
    assert facets["section"]["Europe"] == 3
    assert facets["type"]["Analysis"] >= 4
    # The array facet: one bucket per author, co-authors counted once each.
    assert facets["authors_json"]["Mara Ellison"] == 1
    assert facets["authors_json"]["Daniel K. Osei"] == 1
    assert "Mara Ellison, Daniel K. Osei" not in facets["authors_json"]
    # Following a facet link filters the list.
    rows = served.json("/article_list", authors_json__arraycontains="Anatol Lieven")["rows"]
    assert len(rows) == 1


def test_canned_queries_for_an_author_and_a_page(served):
    assert set(QUERIES) == {"search", "articles_by_author", "page_teasers"}
    rows = served.json("/articles_by_author", author="Ellison", _shape="objects")["rows"]
    assert [r["title"] for r in rows] == ["Saudi normalization can’t be bought while Gaza burns"]
    page = f"{served.site_url}/2021/05/19/blinken-lavrov-iceland/"  # as pasted, with its slash
    rows = served.json("/page_teasers", page=page, _shape="objects")["rows"]
    # Three teasers in the page's HTML, then two from its load-more feed (feed_pages=1).
    feed = [(r["position"], r["archived"]) for r in rows]
    assert feed == [(1, 0), (2, 1), (3, 0), (4, 1), (5, 1)]  # counted from 1
    assert rows[1]["archived_title"] == "US strikes in Iraq show risk of escalation to wider war"


def script_hashes(html: str) -> set[str]:
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(m.group(1).encode()).digest()).decode() + "'"
        for m in re.finditer(r"<script>(.*?)</script>", html, re.S)
    }


def test_every_response_carries_a_strict_content_security_policy(served):
    for path in ("", "/articles", "/article_list", f"/articles/{served.smuggled_id}", "/search"):
        status, headers, html = served.get(path)
        assert status == 200, path
        policy = dict(
            d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'"
        assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
        sources = policy["script-src"].split()
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
        # Datasette's own inline scripts are allowed by hash, and nothing else inline.
        assert script_hashes(html) <= set(sources), path
        assert headers["x-content-type-options"] == "nosniff"
    for path in ("/articles.json", "/-/static/app.css", "/no-such-table"):
        _, headers, _ = served.get(path)
        assert "default-src 'none'" in headers["content-security-policy"], path


def test_stored_html_is_rendered_sanitised(served):
    status, _, html = served.get(f"/articles/{served.smuggled_id}", _raw="1")
    assert status == 200
    body = html.split('class="rsarchive-body"', 1)[1].split("</div>", 1)[0]
    assert "<p>Smuggled paragraph.</p>" in body  # rendered as HTML, not as escaped text
    assert "<script" not in body and "data-pwned" not in body and "onerror" not in body
    assert "javascript:" not in body
    assert "<img" not in body and "[image: x]" in body  # images become links (no remote loads)
    # Real article HTML keeps its structure.
    rows = served.json("/articles", title__contains="munitions boom", _shape="objects")["rows"]
    _, _, page = served.get(f"/articles/{rows[0]['id']}")
    assert '<p class="pull-quote">' in page and "<blockquote>" in page
    # The article page: the same sanitising, images shown (nothing runs from them).
    _, _, html = served.get(f"/articles/{served.smuggled_id}")
    body = html.split('class="rsarchive-body rs-body">', 1)[1].split("</div>", 1)[0]
    assert "<p>Smuggled paragraph.</p>" in body
    assert "<script" not in body and "data-pwned" not in body and "onerror" not in body
    assert "javascript:" not in body and '<img src="x"' in body


def article_id(served: Served, title: str) -> int:
    rows = served.json("/articles", title__exact=title, _shape="objects")["rows"]
    assert len(rows) == 1, title
    return rows[0]["id"]


def text_of(html: str) -> str:
    """What a reader reads: tags dropped, entities decoded, whitespace collapsed."""
    import html as html_module

    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_article_page_reads_as_the_article(served):
    seed = article_id(served, SEED_TITLE)
    iraq = article_id(served, "US strikes in Iraq show risk of escalation to wider war")
    status, _, html = served.get(f"/articles/{seed}")
    assert status == 200
    assert re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S) == [SEED_TITLE_HTML]
    assert f"<title>{SEED_TITLE_HTML}</title>" in html
    page = text_of(html)
    assert "The two men represent two countries with a lot of tensions right now" in page
    assert "By Anatol Lieven May 19, 2021" in page  # the dot between is drawn by CSS
    assert re.search(r'<span class="rs-section">Europe</span>', html)
    byline = re.search(r'<a class="rs-author" href="([^"]+)"[^>]*>Anatol Lieven</a>', html)
    assert byline and byline.group(1).endswith("/author_articles?author=Anatol+Lieven")
    # The lead image, shown (from the archived site), with its caption.
    lead = re.search(r'<figure class="rs-lead">\s*<img src="([^"]+)"', html)
    assert lead and lead.group(1).startswith(served.site_url + "/media-library/blinken-lavrov.jpg")
    assert "Antony Blinken in 2020. (vasilis asvestas/Shutterstock)" in page
    # The body as a reader sees it: its first sentence, its paragraphs and links.
    body = html.split('class="rsarchive-body rs-body">', 1)[1].split("</div>", 1)[0]
    assert text_of(body).startswith(
        "Update 5/19 10 p.m. ET: Secretary of State Antony Blinken and Russian Foreign Minister"
    )
    assert body.count("<p>") >= 10 and "<a href=" in body
    # Keep reading: the page's teasers in order, numbered from 1; the archived one links to its
    # own article page, the others to the site.
    teaser = r'<li value="(\d+)" class="([^"]+)">\s*<a class="rs-teaser" href="([^"]+)">([^<]+)</a>'
    teasers = re.findall(teaser, html)
    assert [(n, t) for n, _, _, t in teasers][:3] == [
        ("1", "Israel-Hamas deal: Talking vs. bombing, works"),
        ("2", "US strikes in Iraq show risk of escalation to wider war"),
        ("3", "JFK: A man on the brink of revelation"),
    ]
    assert len(teasers) == 5  # three in the HTML, two from the load-more feed
    assert teasers[1][1] == "rs-archived" and teasers[1][2].endswith(f"/articles/{iraq}")
    assert teasers[0][1] == "rs-not-archived" and teasers[0][2].startswith(served.site_url)
    # Where it was teased, and its revisions with the latest change as a word diff.
    teased = html.split('class="rs-teased-by"', 1)[1].split("</section>", 1)[0]
    assert "No archived page teased it." in teased
    _, _, iraq_page = served.get(f"/articles/{iraq}")
    teased = iraq_page.split('class="rs-teased-by"', 1)[1].split("</section>", 1)[0]
    assert re.search(
        rf'<a href="/web/articles/{seed}">{re.escape(SEED_TITLE_HTML)}</a>'
        r'\s*<span class="rs-meta">teaser 2,',
        teased,
    ), teased
    revisions = html.split('class="rs-revisions"', 1)[1]
    assert "revision 1" in revisions and "→ 2 (2030-01-02T03:04:05Z)" in revisions
    assert "<del>" in revisions and "<ins>" in revisions
    edit = text_of(revisions.split('class="rs-edit">', 1)[1].split("</p>", 1)[0])
    assert "Sergei Lavrov met" in edit and "Wednesday" in edit and "sideline" in edit
    # The raw columns one click away.
    assert f'href="/web/articles/{seed}.json"' in html
    assert f'href="/web/articles/{seed}?_raw=1"' in html


def test_article_page_shows_tags_and_image_credits(served):
    munitions = article_id(served, "The munitions boom is a blank check with a long tail")
    _, _, html = served.get(f"/articles/{munitions}")
    tags = re.findall(r'<ul class="rs-tags">(.*?)</ul>', html, re.S)
    assert tags and "/tag_articles?tag=" in tags[0]
    page = text_of(html)
    assert "An aerial view of the Pentagon in Arlington, Virginia. M. Halvorsen/Shutterstock" in (
        page
    )
    body = html.split('class="rsarchive-body rs-body">', 1)[1].split("</section>", 1)[0]
    assert '<img alt="Artillery shells on a production line"' in body
    assert "U.S. Army photo" in body
    # The YouTube embed (an iframe on the site) is a link to it, not a hole in the text; it is
    # no part of body_text.
    assert re.search(
        r'<a href="https://www.youtube.com/embed/Xq9vPz3LkTc\?rel=0&amp;start=0"[^>]*>'
        r"Embedded media: www.youtube.com</a>",
        body,
    ), body
    (row,) = served.json("/articles", id=str(munitions), _shape="objects")["rows"]
    assert "Embedded media" not in row["body_text"]


def test_raw_row_page_keeps_every_column(served):
    seed = article_id(served, SEED_TITLE)
    status, _, html = served.get(f"/articles/{seed}", _raw="1")
    assert status == 200 and 'class="rs-article"' not in html
    for column in ("body_html", "content_hash", "first_seen_at", "declared_canonical"):
        assert f"col-{column}" in html, column
    row = served.json(f"/articles/{seed}")
    assert row["rows"][0][row["columns"].index("title")] == SEED_TITLE


def test_front_pages_lead_with_search_newest_articles_and_charts(served):
    for path in ("", "/"):  # the database page, then the index
        status, _, html = served.get(path) if path == "" else served.get_root(path)
        assert status == 200, path
        lead = html.index('class="rs-lead-block"')
        assert html.index('<form class="rs-search" action="/web/search"') > lead
        assert "Search 10 archived articles" in html
        newest = re.findall(r'<ol class="rs-newest">(.*?)</ol>', html, re.S)[0]
        titles = re.findall(r'<a href="/web/articles/\d+">([^<]+)</a>', newest)
        assert len(titles) == 10 and titles[-1] == SEED_TITLE_HTML
        # Charts drawn on the server: one bar per month from May 2021 to the newest month.
        charts = html.split('class="rs-charts"', 1)[1]
        assert charts.count("<svg") == 3
        assert "<title>2021-05: 1 article</title>" in charts
        assert "<title>Europe, 2021-05: 1 article</title>" in charts
        # The eight most published authors (here: one article each, so any eight of eleven).
        by_author = charts.split("<svg")[3]
        assert len(re.findall(r"<title>[^<,]+, 20\d\d-\d\d: 1 article</title>", by_author)) == 8
        if path == "":
            assert lead < html.index('id="tables"')


def test_column_descriptions_fold_away(served):
    _, _, html = served.get("/articles")
    folded = re.search(r'<details class="rs-columns">\s*<summary>What the (\d+) columns hold', html)
    assert folded and int(folded.group(1)) == len(TABLES["articles"][1])
    _, _, css = served.get_root("/rsarchive-static/rsarchive.css")
    assert "dl.column-descriptions { display: none; }" in css


def test_table_search_box_ranks_by_relevance(served):
    for table in ("articles", "article_list"):
        req = urllib.request.Request(f"{served.url}/{table}?_search=Iceland+OR+Iraq")
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(req, timeout=30)
        assert redirect.value.code == 302
        assert redirect.value.headers["location"] == "/web/search?q=Iceland+OR+Iraq"
    # A search with a facet or sort stays on the table.
    status, _, _ = served.get("/articles", _search="Iceland", section="Europe")
    assert status == 200
    rows = served.json("/search", q="Iceland OR Iraq OR Lavrov", _shape="objects")["rows"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    _, _, html = served.get("/search", q="Iceland")
    seed = article_id(served, SEED_TITLE)
    assert f'<a href="/web/articles/{seed}">' in html


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_no_images_keeps_every_request_on_the_server(served):
    """`serve --no-images`: article images are links, and the policy loads none from elsewhere."""
    import asyncio

    from rsarchive.web import make_datasette

    ds = make_datasette(served.db, site_url=served.site_url, images=False)
    munitions = article_id(served, "The munitions boom is a blank check with a long tail")

    async def get() -> tuple[str, str]:
        await ds.invoke_startup()
        resp = await ds.client.get(f"/web/articles/{munitions}")
        return resp.text, resp.headers["content-security-policy"]

    html, policy = asyncio.run(get())
    page = html.split('class="rs-article"', 1)[1]
    assert "<img" not in page
    assert "[image: Artillery shells on a production line]</a>" in page
    assert "img-src 'self' data:;" in policy


def test_serving_never_writes_to_the_archive(served):
    served.get("/search", q="Iceland")
    served.get("", sql="delete from articles")  # refused: Datasette runs read-only SQL only
    assert sha256_of(served.db) == served.db_sha256
    assert served.json("/articles", _shape="objects")["filtered_table_rows_count"] == 10


# -- a real browser ---------------------------------------------------------------------------


def _install_chromium() -> str | None:
    """Debian's chromium via apt-get (root only); returns why it could not be, or None."""
    if os.geteuid() != 0:
        return "chromium is not installed and this user is not root (apt-get install chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "chromium"]
    for cmd in (install, ["apt-get", "update", "-q"], install):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode == 0 and cmd is install and shutil.which("chromium"):
            return None
    return f"apt-get install chromium failed: {proc.stderr.strip().splitlines()[-1:]}"


@pytest.fixture(scope="session")
def chromium(request) -> str:
    path = shutil.which("chromium")
    if path is None:
        started = time.monotonic()
        why = _install_chromium()
        if why is not None:
            if os.environ.get("CI") == "true":
                pytest.fail(why)
            pytest.skip(why)
        report(request, f"installed chromium in {time.monotonic() - started:.0f} s")
        path = shutil.which("chromium")
    assert path
    return path


def report(request, line: str) -> None:
    """A line for the end of pytest's output (conftest's terminal summary), not its middle."""
    request.config.stash.setdefault(ARTIFACT_LINES, []).append(f"test_web: {line}")


def run_chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        # Every host name but loopback fails to resolve: no request leaves the machine (article
        # images of the fixture pages name the real site).
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The browser reports every blocked script or resource on its console.
    assert "Content Security Policy" not in proc.stderr, proc.stderr[-2000:]
    return proc


def test_browser_renders_search_results_and_snippets(served, chromium, tmp_path, request):
    url = f"{served.url}/search?" + urllib.parse.urlencode({"q": "Iceland OR Iraq"})
    dom = run_chromium(chromium, tmp_path, "--dump-dom", url).stdout
    assert SEED_TITLE in dom
    assert "US strikes in Iraq show risk of escalation to wider war" in dom
    assert re.search(r'<td class="col-snippet[^"]*">[^<]*<mark>Iceland</mark>', dom), dom[-3000:]

    shot = screenshot(chromium, tmp_path, "web-search.png", url, 1600)
    report(request, f"screenshot {shot.relative_to(ROOT)} ({shot.stat().st_size:,} bytes)")


def test_browser_runs_datasette_scripts_but_not_smuggled_ones(served, chromium, tmp_path):
    dom = run_chromium(
        chromium, tmp_path, "--dump-dom", f"{served.url}/articles/{served.smuggled_id}"
    ).stdout
    assert "Smuggled paragraph." in dom
    assert "data-pwned" not in dom
    # table.js ran under the policy: it builds the column menu on the page.
    dom = run_chromium(chromium, tmp_path, "--dump-dom", f"{served.url}/article_list").stdout
    assert 'class="dropdown-menu"' in dom


def screenshot(chromium: str, tmp_path: Path, name: str, url: str, height: int) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    run_chromium(chromium, tmp_path, f"--screenshot={shot}", f"--window-size=1280,{height}", url)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    return shot


def test_browser_shows_the_article_as_a_reader_reads_it(served, chromium, tmp_path, request):
    seed = article_id(served, SEED_TITLE)
    iraq = article_id(served, "US strikes in Iraq show risk of escalation to wider war")
    url = f"{served.url}/articles/{seed}"
    dom = run_chromium(chromium, tmp_path, "--dump-dom", url).stdout
    # The DOM after the browser built it (and ran Datasette's scripts): what a reader sees.
    assert f"<h1>{SEED_TITLE}</h1>" in dom  # the DOM serialiser writes ' as it is
    assert "Update 5/19 10 p.m. ET: Secretary of State Antony Blinken and Russian" in dom
    assert re.search(
        rf'<a class="rs-teaser" href="/web/articles/{iraq}">US strikes in Iraq show risk', dom
    )
    assert '<a class="rs-teaser" href="http://127.0.0.1:' in dom  # not archived: to the site
    shots = [
        ("web-article.png", url, 4400),
        ("web-article-top.png", url, 1000),
        ("web-article-media.png", f"{served.url}/articles/"
         f"{article_id(served, 'The munitions boom is a blank check with a long tail')}", 1800),
        ("web-front.png", served.url, 2000),
    ]  # fmt: skip
    for name, page, height in shots:
        shot = screenshot(chromium, tmp_path, name, page, height)
        report(request, f"screenshot {shot.relative_to(ROOT)} ({shot.stat().st_size:,} bytes)")
