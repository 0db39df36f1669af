"""The query commands on an archive built by really crawling the fixture site once."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, running_site

from rsarchive.cli import main

SEED_TITLE = "What to make of the Blinken-Lavrov 'showdown' in Iceland"
IRAQ_TITLE = "US strikes in Iraq show risk of escalation to wider war"
SAUDI_TITLE = "Saudi normalization can’t be bought while Gaza burns"


class Archive:
    """The crawled archive: its file, the site URL it was crawled from, SQL for checking."""

    def __init__(self, db: Path, site: str) -> None:
        self.db = db
        self.site = site

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()

    def value(self, sql: str, *params: object) -> object:
        return self.rows(sql, *params)[0][0]


@pytest.fixture(scope="module")
def archive(fixture_site, tmp_path_factory) -> Archive:
    from conftest import scrapy_crawl

    db = tmp_path_factory.mktemp("query") / "archive.db"
    with running_site(fixture_site) as server:
        urls = [server.page_url(page.name) for page in fixture_site.pages.values()]
        # The pages' own HTML feeds only (feed_pages=0): these tests read exact teaser lists,
        # and the load-more feed has tests of its own (test_feed.py).
        result = scrapy_crawl(
            "article", db, server.url, "-a", f"urls={','.join(urls)}", "-a", "feed_pages=0"
        )
        site = server.url
    # Two pages are not archivable (a 404, a page without a headline): exit 1, the rest stored.
    assert result.rows("SELECT count(*) FROM articles") == [(10,)], result.log
    return Archive(db, site)


@pytest.fixture
def run(archive, capsys, monkeypatch):
    """``rsarchive ARGS --db archive`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setenv("RSARCHIVE_SITE_URL", archive.site)

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--db", str(archive.db)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def run_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed ``rsarchive`` command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def jsonl(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def titles(out: str) -> list[str]:
    return [r["title"] for r in jsonl(out)]


# -- search --------------------------------------------------------------------------------------


def test_search_ranks_the_article_about_it_first_with_a_highlighted_snippet(run):
    code, out, err = run("search", "Reykjavik")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"  1. {SEED_TITLE}"
    assert "Anatol Lieven" in lines[1] and "2021-05-19" in lines[1]
    assert lines[2].strip().endswith("/2021/05/19/blinken-lavrov-iceland")
    # Not a terminal: hits are marked with brackets, no ANSI codes.
    assert "[Reykjavik]" in out and "\x1b[" not in out


def test_search_weights_titles_above_bodies(run, archive):
    # "show" is in one title, and more often in a shorter body: plain bm25 puts that body first.
    order = archive.rows(
        "SELECT a.title FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid"
        " WHERE articles_fts MATCH 'show' ORDER BY bm25(articles_fts)"
    )
    assert order[0][0] != IRAQ_TITLE
    _, out, _ = run("search", "show", "--json")
    assert titles(out) == [IRAQ_TITLE, order[0][0]]
    # "Europe" is in one title and in other bodies; "China" likewise.
    _, out, _ = run("search", "europe", "--json")
    assert titles(out)[0] == "Finland and Sweden are redrawing Europe’s security map"
    assert len(titles(out)) == archive.value(
        "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH 'europe'"
    )
    _, out, _ = run("search", "china", "--json")
    assert titles(out)[0].startswith("Manila’s caution in the South China Sea")


def test_search_phrase_prefix_not_or_and_punctuated_words(run):
    assert titles(run("search", '"first, do no harm"', "--json")[1]) == [SEED_TITLE]
    assert titles(run("search", "Reykjav*", "--json")[1]) == [SEED_TITLE]
    # A word with punctuation is the phrase of its parts, not an FTS5 syntax error.
    assert titles(run("search", "U.S.-Russian", "--json")[1]) == [SEED_TITLE]
    assert titles(run("search", "Blinken-Lavrov", "--json")[1]) == [SEED_TITLE]
    assert titles(run("search", "Blinken-Lav*", "--json")[1]) == [SEED_TITLE]
    gaza = set(titles(run("search", "gaza", "--json")[1]))
    assert {IRAQ_TITLE, SAUDI_TITLE} <= gaza
    assert titles(run("search", "gaza NOT saudi", "--json")[1]) == [IRAQ_TITLE]
    either = set(titles(run("search", "Reykjavik OR Riyadh", "--json")[1]))
    assert either == {SEED_TITLE, SAUDI_TITLE}
    # A column filter: only titles.
    assert set(titles(run("search", "title:iraq", "--json")[1])) == {
        "The 2002 Iraq war authorization survives another repeal push",
        IRAQ_TITLE,
    }


def test_search_json_lines_have_stable_fields(run, archive):
    _, out, _ = run("search", "Reykjavik", "--json")
    (hit,) = jsonl(out)
    assert set(hit) == {
        "id",
        "url",
        "title",
        "subtitle",
        "type",
        "section",
        "authors",
        "published_at",
        "removed_at",
        "score",
        "snippet",
    }
    assert hit["authors"] == ["Anatol Lieven"]
    assert hit["url"] == f"{archive.site}/2021/05/19/blinken-lavrov-iceland"
    assert "[Reykjavik]" in hit["snippet"] and hit["score"] > 0


def test_search_filters_limit_and_offset(run):
    every = titles(run("search", "russia", "--json")[1])
    assert len(every) == 3
    assert titles(run("search", "russia", "--json", "--section", "europe")[1]) == every
    assert titles(run("search", "russia", "--json", "--type", "Analysis")[1]) == [
        t for t in every if t != SEED_TITLE
    ]
    assert titles(run("search", "russia", "--json", "--author", "lieven")[1]) == [SEED_TITLE]
    assert titles(run("search", "russia", "--json", "--until", "2021")[1]) == [SEED_TITLE]
    assert titles(run("search", "russia", "--json", "--since", "2021-05-20")[1]) == [
        t for t in every if t != SEED_TITLE
    ]
    assert titles(run("search", "russia", "--json", "--until", "2021-05-19T12:45:00Z")[1]) == [
        SEED_TITLE
    ]
    assert titles(run("search", "russia", "--json", "--until", "2021-05-19T12:44:59Z")[1]) == []
    assert titles(run("search", "russia", "--json", "--limit", "1", "--offset", "1")[1]) == [
        every[1]
    ]


# -- list, authors, sections, tags ---------------------------------------------------------------


def test_list_is_newest_first_with_filters(run, archive):
    _, out, _ = run("list", "--json", "--limit", "100")
    expected = [t for (t,) in archive.rows("SELECT title FROM articles ORDER BY published_at DESC")]
    assert titles(out) == expected
    _, out, _ = run("list", "--json", "--since", "2024-04", "--until", "2024-05")
    assert [r["published_at"][:7] for r in jsonl(out)] == ["2024-05"] * 2 + ["2024-04"] * 2
    _, out, _ = run("list", "--section", "Europe")
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "PUBLISHED", "SECTION", "AUTHORS", "TITLE"]
    assert len(rows) == 3 and all("Europe" in r for r in rows)


def test_authors_sections_tags_with_counts(run, archive):
    _, out, _ = run("authors", "--json")
    authors = {r["name"]: r["articles"] for r in jsonl(out)}
    assert authors["Anatol Lieven"] == 1
    assert authors["José Martí-Ruiz"] == 1
    assert len(authors) == archive.value("SELECT count(*) FROM authors")
    _, out, _ = run("sections")
    assert out.splitlines()[1].split() == ["3", "Europe"]
    _, out, _ = run("tags", "--json")
    tags = {r["name"]: r["articles"] for r in jsonl(out)}
    assert tags == dict(
        archive.rows(
            "SELECT t.name, count(*) FROM tags t"
            " JOIN article_tags x ON x.tag_id = t.id GROUP BY t.id"
        )
    )


# -- show and teasers ----------------------------------------------------------------------------


def test_show_by_url_with_or_without_slash_by_path_id_and_post_id(run, archive):
    seed_id = archive.value("SELECT id FROM articles WHERE post_id = '2652879530'")
    outs = [
        run("show", f"{archive.site}/2021/05/19/blinken-lavrov-iceland/")[1],
        run("show", f"{archive.site}/2021/05/19/blinken-lavrov-iceland")[1],
        run("show", "/2021/05/19/blinken-lavrov-iceland/")[1],
        run("show", f"{archive.site}/2021/05/19/blinken-lavrov-iceland/?utm_source=tw#x")[1],
        run("show", str(seed_id))[1],
        run("show", "2652879530")[1],
    ]
    assert all(o == outs[0] for o in outs)
    text = outs[0]
    assert text.startswith(SEED_TITLE + "\n")
    assert "  authors     Anatol Lieven" in text
    assert "  published   2021-05-19T12:45:00Z" in text
    assert "The guiding motto of Secretary of State Anthony Blinken" in text
    # The body holds none of the teasers; they come after it, in order, with archived flags.
    body, feed = text.split("Keep reading: 3 teasers on this page")
    assert "Israel-Hamas" not in body
    assert feed.index("Israel-Hamas deal") < feed.index(IRAQ_TITLE) < feed.index("JFK:")
    iraq_id = archive.value("SELECT id FROM articles WHERE post_id = '2666381402'")
    assert f"{IRAQ_TITLE}  [archived #{iraq_id}]" in feed
    assert "Israel-Hamas deal: Talking vs. bombing, works  [not archived]" in feed


def test_show_says_where_an_article_was_teased(run, archive):
    _, out, _ = run("show", "/us-strikes-iraq-2666381402", "--json")
    art = json.loads(out)
    assert art["title"] == IRAQ_TITLE
    # Positions count from 1, as search results do (the table holds 0, 1, ...).
    assert [(t["page_title"], t["position"]) for t in art["teased_by"]] == [(SEED_TITLE, 2)]
    assert [t["position"] for t in art["teasers"]] == [1, 2]
    assert art["authors"] == [{"name": "Samuel Whitcomb", "url": art["authors"][0]["url"]}]
    assert "Teased on: 1 page\n" in run("show", "/us-strikes-iraq-2666381402")[1]


def test_show_markdown_and_html(run):
    code, md, _ = run("show", "/pentagon-munitions-multiyear-contracts", "--format", "markdown")
    assert code == 0
    assert md.startswith("# The munitions boom is a blank check with a long tail\n")
    assert "- **section:** Military Industrial Complex" in md
    assert "\n> " in md  # the body's blockquote
    assert "](" in md and "<p>" not in md and "<script" not in md
    assert "## Keep reading" in md
    code, page, _ = run("show", "/pentagon-munitions-multiyear-contracts", "--format", "html")
    assert page.startswith("<article>\n<h1>The munitions boom")
    assert "<blockquote>" in page and "<script" not in page and "onerror" not in page


def test_teasers_of_a_listing_page_in_order(run, archive):
    code, out, err = run("teasers", f"{archive.site}/tag/iran/", "--json")
    assert code == 0, err
    rows = jsonl(out)
    expected = archive.rows(
        "SELECT position, title, url FROM teasers WHERE page_url = ? ORDER BY position",
        f"{archive.site}/tag/iran",
    )
    assert [(r["position"] - 1, r["title"], r["url"]) for r in rows] == expected  # from 1
    assert [r["position"] for r in rows] == [1, 2, 3, 4, 5]
    assert len(rows) == 5 and not any(r["archived"] for r in rows)
    assert all(isinstance(r["authors"], list) for r in rows)
    _, out, _ = run("teasers", "/2021/05/19/blinken-lavrov-iceland")
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["POS", "ARCHIVED", "FIRST", "SEEN"]
    assert [line.split()[1] for line in lines] == ["no", "yes", "no"]


# -- stats and export ----------------------------------------------------------------------------


def test_stats_numbers_are_the_databases(run, archive):
    _, out, _ = run("stats", "--json")
    stats = json.loads(out)
    t = stats["totals"]
    for table in ("articles", "authors", "tags", "teasers", "captures", "revisions"):
        assert t[table] == archive.value(f"SELECT count(*) FROM {table}"), table
    assert t["removed"] == 0
    assert t["capture_bytes"] == archive.value("SELECT sum(size) FROM captures")
    assert sum(m["articles"] for m in stats["per_month"]) == 10
    assert {"month": "2024-05", "articles": 2} in stats["per_month"]
    (run_row,) = stats["runs"]
    assert (run_row["spider"], run_row["status"]) == ("article", "finished")
    _, text, _ = run("stats")
    assert "articles   10" in text and "RUN  SPIDER" in text


EXPORT_COLUMNS = (
    "id",
    "url",
    "title",
    "subtitle",
    "type",
    "section",
    "published_at",
    "body_text",
    "word_count",
)


def _db_articles(archive: Archive) -> dict[int, dict]:
    out = {}
    for row in archive.rows(f"SELECT {', '.join(EXPORT_COLUMNS)} FROM articles"):
        out[row[0]] = dict(zip(EXPORT_COLUMNS, row, strict=True))
    for article_id, name in archive.rows(
        "SELECT x.article_id, a.name FROM article_authors x JOIN authors a ON a.id = x.author_id"
        " ORDER BY x.article_id, x.position"
    ):
        out[article_id].setdefault("authors", []).append(name)
    return out


def test_export_jsonl_round_trips_every_article(run, archive, tmp_path):
    _, out, _ = run("export", "--format", "jsonl")
    rows = jsonl(out)
    db = _db_articles(archive)
    assert sorted(r["id"] for r in rows) == sorted(db)
    for r in rows:
        assert {k: r[k] for k in EXPORT_COLUMNS} == {k: db[r["id"]][k] for k in EXPORT_COLUMNS}
        assert r["authors"] == db[r["id"]]["authors"]
    two = next(r for r in rows if r["url"].endswith("/saudi-israel-normalization"))
    assert two["authors"] == ["Mara Ellison", "Daniel K. Osei"]
    assert isinstance(two["tags"], list) and two["tags"]
    # To a file, with a filter.
    target = tmp_path / "europe.jsonl"
    code, out, err = run("export", "--section", "Europe", "--output", str(target))
    assert code == 0 and out == "" and "exported 3 articles" in err
    assert len(target.read_text().splitlines()) == 3


def test_export_csv_round_trips_every_article(run, archive):
    _, out, _ = run("export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    db = _db_articles(archive)
    assert len(rows) == len(db)
    for r in rows:
        expected = db[int(r["id"])]
        assert r["title"] == expected["title"]
        assert r["body_text"] == expected["body_text"]
        assert r["authors"].split("; ") == expected["authors"]


# -- bad input -----------------------------------------------------------------------------------


def _one_line_error(proc: subprocess.CompletedProcess, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "NOT",
        "iran AND",
        "(iran",
        "-",
        "iran - nuclear",
        "iran -nuclear",
        "NEAR(iran",
        "  ",
        "...",
    ],
)
def test_malformed_search_query_exits_65(archive, query):
    line = _one_line_error(run_command("search", query, "--db", str(archive.db)), 65)
    assert line.startswith("rsarchive search:")
    assert "fts5" not in line  # said in words, not as SQLite's message


@pytest.mark.parametrize(
    ("query", "explanation"),
    [
        ("(iran", "a ( is not closed in the search query"),
        ("iran)", "a ) closes no ( in the search query"),
        ("iran AND", "AND needs a search after it (iran AND sanctions)"),
        ("OR iraq", "OR needs a search before it (iran OR iraq)"),
        ("NEAR iran", "NEAR takes its words in parentheses: NEAR(iran sanctions, 10)"),
        (
            "(iran or iraq",
            "a ( is not closed in the search query (lowercase or is a word to search for; write "
            "OR to combine searches)",
        ),
    ],
)
def test_a_search_syntax_error_is_explained_in_one_line(archive, query, explanation):
    line = _one_line_error(run_command("search", query, "--db", str(archive.db)), 65)
    assert line == f"rsarchive search: {explanation}"


def test_lowercase_operators_get_a_hint(archive):
    proc = run_command("search", "greenland or svalbard", "--db", str(archive.db))
    assert proc.returncode == 0 and proc.stdout == ""
    assert proc.stderr == (
        "no matches (lowercase or is a word to search for; write OR to combine searches)\n"
    )
    found = run_command("search", "lavrov not iceland", "--db", str(archive.db))
    assert found.returncode == 0 and SEED_TITLE in found.stdout
    assert found.stderr == (
        "1 match (lowercase not is a word to search for; write NOT to combine searches)\n"
    )


def test_unknown_article_or_page_exits_66(archive):
    line = _one_line_error(
        run_command("show", f"{archive.site}/no-such-post", "--db", str(archive.db)), 66
    )
    assert "no archived article at" in line
    teased = _one_line_error(
        run_command("show", f"{archive.site}/jfk-assassination/", "--db", str(archive.db)), 66
    )
    assert "seen as a teaser on 1 page" in teased
    _one_line_error(run_command("show", "999999", "--db", str(archive.db)), 66)
    _one_line_error(run_command("teasers", "/no-such-page", "--db", str(archive.db)), 66)


def test_bad_date_exits_64_before_touching_the_database(archive, tmp_path):
    for bad in ("2021-13", "yesterday", "2021-02-30"):
        line = _one_line_error(run_command("list", "--since", bad, "--db", str(archive.db)), 64)
        assert "bad date" in line
    missing = tmp_path / "none.db"
    _one_line_error(run_command("search", "x", "--until", "soon", "--db", str(missing)), 64)
    assert not missing.exists()


def test_missing_database_exits_74_and_creates_nothing(tmp_path):
    missing = tmp_path / "sub" / "archive.db"
    for args in (["search", "iran"], ["stats"], ["export"], ["show", "1"]):
        line = _one_line_error(run_command(*args, "--db", str(missing)), 74)
        assert "no archive database at" in line
    assert not missing.parent.exists()
    # The default database (no --db, no environment) is a missing file too, in the cwd.
    env = {"RSARCHIVE_DATABASE_URL": f"sqlite:///{tmp_path / 'default.db'}"}
    _one_line_error(run_command("list", env=env), 74)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_an_archive_exits_78_untouched(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    line = _one_line_error(run_command("list", "--db", str(text)), 78)
    assert "is not an rsarchive archive" in line
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE articles (id INTEGER PRIMARY KEY, title TEXT)")
    before = other.read_bytes()
    line = _one_line_error(run_command("search", "iran", "--db", str(other)), 78)
    assert "is not an rsarchive archive" in line
    assert other.read_bytes() == before  # not switched to WAL, nothing added
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "other.db"]


def test_usage_errors_exit_64(archive):
    for bad in (["list", "--limit", "lots"], ["list", "--limit", "-1"], ["search"]):
        proc = run_command(*bad, "--db", str(archive.db))
        assert proc.returncode == 64 and "Traceback" not in proc.stderr, proc.stderr
    proc = run_command("export", "--format", "xml", "--db", str(archive.db))
    assert proc.returncode == 64 and "Traceback" not in proc.stderr


def test_export_to_an_unwritable_place_exits_73_and_leaves_nothing(archive, tmp_path):
    target = tmp_path / "no-such-dir" / "out.csv"
    line = _one_line_error(
        run_command("export", "--format", "csv", "-o", str(target), "--db", str(archive.db)), 73
    )
    assert "cannot write" in line
    assert list(tmp_path.iterdir()) == []


# -- the pieces users type: query words and dates ------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "fts5"),
    [
        ("iran nuclear", "iran nuclear"),
        ('"arms control" OR sanction*', '"arms control" OR sanction*'),
        ("iran NOT (nuclear OR deal)", "iran NOT ( nuclear OR deal )"),
        ("U.S.-Iran talks", '"U.S.-Iran" talks'),
        ("Blinken-Lav*", '"Blinken-Lav"*'),
        ("title:U.S.-Iran", 'title:"U.S.-Iran"'),
        ("http://example.org/x", '"http://example.org/x"'),
        ("iran & nuclear", "iran nuclear"),
        ("don't", '"don\'t"'),
    ],
)
def test_search_words_become_fts5_query(typed, fts5):
    from rsarchive.archive.searchquery import fts_query

    assert fts_query(typed) == fts5


@pytest.mark.parametrize(
    ("typed", "since", "until"),
    [
        ("2021", "2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z"),
        ("2021-02", "2021-02-01T00:00:00Z", "2021-03-01T00:00:00Z"),
        ("2024-02-29", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"),
        ("2021-05-19T14:03:00Z", "2021-05-19T14:03:00Z", "2021-05-19T14:03:01Z"),
        ("2021-05-19T16:03:00+02:00", "2021-05-19T14:03:00Z", "2021-05-19T14:03:01Z"),
        ("2021-05-19T14:03", "2021-05-19T14:03:00Z", "2021-05-19T14:03:01Z"),
    ],
)
def test_dates_name_whole_periods(typed, since, until):
    from rsarchive.archive.filters import date_bound

    assert date_bound(typed) == since
    assert date_bound(typed, end=True) == until


def test_hits_are_bold_on_a_terminal_unless_no_color(monkeypatch):
    from rsarchive.archive.queries import HIT_END, HIT_START
    from rsarchive.cli.query import highlighter

    snippet = f"the {HIT_START}Reykjavik{HIT_END} meeting"
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert highlighter()(snippet) == "the \x1b[1mReykjavik\x1b[0m meeting"
    assert highlighter(machine=True)(snippet) == "the [Reykjavik] meeting"
    monkeypatch.setenv("NO_COLOR", "1")
    assert highlighter()(snippet) == "the [Reykjavik] meeting"


def test_database_url_from_the_environment_may_be_a_plain_path(archive):
    """RSARCHIVE_DATABASE_URL takes what --db takes: a path (relative to where you are) too."""
    for value in (str(archive.db), os.path.relpath(archive.db, ROOT)):
        proc = run_command("list", "--json", "--limit", "3", env={"RSARCHIVE_DATABASE_URL": value})
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 3


KYIV_TITLE = "Kyiv’s grain corridor — and the café diplomacy keeping it open"
MUNITIONS_TITLE = "The munitions boom is a blank check with a long tail"


def test_author_matches_without_accents_or_case(run):
    for author in ("jose", "JOSÉ MARTÍ", "marti-ruiz"):
        code, out, _ = run("list", "--author", author, "--json")
        assert code == 0
        assert [json.loads(line)["title"] for line in out.splitlines()] == [KYIV_TITLE], author
    code, out, _ = run("search", "grain", "--author", "jose", "--json")
    assert [json.loads(line)["title"] for line in out.splitlines()] == [KYIV_TITLE]


def test_list_search_and_export_take_tag(run):
    code, out, err = run("list", "--tag", "ukraine", "--json")
    assert code == 0, err
    assert {json.loads(line)["title"] for line in out.splitlines()} == {KYIV_TITLE, MUNITIONS_TITLE}
    code, out, _ = run("search", "contracts OR grain", "--tag", "Ukraine", "--json")
    assert {json.loads(line)["title"] for line in out.splitlines()} == {KYIV_TITLE, MUNITIONS_TITLE}
    code, out, _ = run("export", "--tag", "UKRAINE")
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["title"] for r in rows} == {KYIV_TITLE, MUNITIONS_TITLE}
    assert all("Ukraine" in r["tags"] for r in rows)
    code, out, err = run("list", "--tag", "no such tag")
    assert (code, out) == (0, "") and err == "no articles\n"


def test_list_sorts(run):
    def titles(*args: str) -> list[str]:
        code, out, _ = run("list", "--json", "--limit", "3", *args)
        assert code == 0
        return [json.loads(line)["title"] for line in out.splitlines()]

    assert titles("--sort", "oldest")[0] == SEED_TITLE
    assert titles("--sort", "words") == [SEED_TITLE, IRAQ_TITLE, MUNITIONS_TITLE]
    by_title = titles("--sort", "title", "--limit", "20")
    assert by_title == sorted(by_title, key=str.lower)
    with pytest.raises(SystemExit) as usage:
        run("list", "--sort", "random")
    assert usage.value.code == 64


def test_text_output_says_how_many_and_how_to_see_more(run):
    code, out, err = run("list", "--limit", "4")
    assert code == 0 and len(out.splitlines()) == 5  # header + 4
    assert err == "showing 4 of 10; --offset 4 for more\n"
    _, _, err = run("list", "--limit", "4", "--offset", "8")
    assert err == "showing 9-10 of 10\n"
    _, _, err = run("list", "--section", "europe")
    assert err == "3 articles\n"
    _, out, err = run("search", "the", "--limit", "2")
    assert out.count("\n     http") == 2
    assert err.startswith("showing 2 of ") and err.endswith("; --offset 2 for more\n")
    # A short page is the last: its total needs no second count.
    assert run("search", "russia")[2] == "3 matches\n"
    assert run("search", "russia", "--limit", "2", "--offset", "2")[2] == "showing 3-3 of 3\n"
    assert run("search", "russia", "--type", "analysis")[2] == "2 matches\n"
    assert run("search", "russia", "--limit", "2", "--type", "analysis")[2] == "2 matches\n"


def test_list_in_a_pipe_cuts_nothing(archive):
    proc = run_command("list", "--limit", "20", "--db", str(archive.db), env={"COLUMNS": ""})
    assert proc.returncode == 0
    assert "Military Industrial Complex" in proc.stdout and "…" not in proc.stdout
    assert "Mara Ellison, Daniel K. Osei" in proc.stdout


def test_export_infers_csv_from_the_extension_and_refuses_a_contradiction(archive, tmp_path):
    out = tmp_path / "articles.csv"
    proc = run_command("export", "-o", str(out), "--db", str(archive.db))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 10
    clash = run_command(
        "export", "-o", str(tmp_path / "x.csv"), "--format", "jsonl", "--db", str(archive.db)
    )
    assert clash.returncode == 64
    assert clash.stderr == (
        f"rsarchive export: --format jsonl contradicts the extension of {tmp_path / 'x.csv'} "
        "(csv): drop --format or rename the file\n"
    )
    assert not (tmp_path / "x.csv").exists()


def test_show_history_and_teasers_fold_http_and_https(run, archive):
    """The archive holds the crawled site's URLs (here http://127.0.0.1:...): the https form
    of a URL finds the same article, as a www. or bare host does."""
    other = archive.site.replace("http://", "https://") + "/2021/05/19/blinken-lavrov-iceland/"
    code, out, err = run("show", other, "--json")
    assert code == 0, err
    assert json.loads(out)["title"] == SEED_TITLE
    code, out, _ = run("history", other, "--json")
    assert code == 0 and json.loads(out)["article"]["title"] == SEED_TITLE
    code, out, _ = run("teasers", other, "--json")
    assert code == 0 and len(out.splitlines()) == 3


def test_diff_json_of_an_article_with_one_revision_is_json(run):
    code, out, _ = run("diff", "/2021/05/19/blinken-lavrov-iceland/", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["from"] is None and doc["to"]["number"] == 1
    assert (doc["changes"], doc["fields"], doc["body_diff"]) == ([], {}, [])
    assert doc["note"].endswith("has 1 revision: nothing to compare")
    code, out, _ = run("diff", "/2021/05/19/blinken-lavrov-iceland/")
    assert code == 0 and out.endswith("has 1 revision: nothing to compare\n")
