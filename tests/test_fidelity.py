"""Fidelity end to end: revisions of edited pages, captures, history and diff, re-parse."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import CrawlResult, SiteServer, rsarchive, scrapy_crawl

from rsarchive.cli import main

SEED_PATH = "/2021/05/19/blinken-lavrov-iceland/"
CASES = ("seed", "two-authors", "us-strikes-iraq", "tag-listing", "inline-media")


def crawl(server: SiteServer, db: Path, *cases: str) -> CrawlResult:
    urls = ",".join(server.page_url(c) for c in cases)
    result = scrapy_crawl("article", db, server.url, "-a", f"urls={urls}")
    assert result.returncode == 0, result.log
    return result


def edit_seed(server: SiteServer, old: bytes, new: bytes) -> None:
    status, headers, body = server.site.respond(SEED_PATH, origin=server.url)
    assert body.count(old) == 1
    server.overrides[SEED_PATH] = (status, headers, body.replace(old, new))


def counts(result: CrawlResult) -> dict[str, int]:
    return {
        table: result.rows(f"SELECT count(*) FROM {table}")[0][0]
        for table in ("articles", "revisions", "captures", "teasers")
    }


def test_an_edited_article_gets_one_new_revision_and_diff_shows_the_change(site_server, tmp_path):
    db = tmp_path / "a.db"
    first = crawl(site_server, db, *CASES)
    assert first.rows("SELECT count(*) FROM revisions GROUP BY article_id") == [(1,)] * 4
    before = counts(first)
    edit_seed(site_server, b"amicable in tone", b"frosty and guarded in tone")
    second = crawl(site_server, db, *CASES)

    base = site_server.url
    revisions = dict(
        second.rows(
            "SELECT a.url, count(*) FROM revisions r JOIN articles a ON a.id = r.article_id"
            " GROUP BY a.url"
        )
    )
    seed_url = f"{base}{SEED_PATH.rstrip('/')}"
    assert revisions.pop(seed_url) == 2
    assert set(revisions.values()) == {1} and len(revisions) == 3
    # Only the edited page brought a new body: one more capture, for it alone.
    assert counts(second)["captures"] == before["captures"] + 1
    assert second.rows("SELECT count(*) FROM captures WHERE url = ?", seed_url) == [(2,)]
    (body, changed, first_seen, parser) = second.rows(
        "SELECT body_text, changed_at, first_seen_at, parser_version FROM articles WHERE url = ?",
        seed_url,
    )[0]
    assert "frosty and guarded in tone" in body and changed >= first_seen
    assert parser.startswith("rebelmouse-")
    # Each revision points at the capture it was read from, and names the parser.
    assert second.rows(
        "SELECT count(DISTINCT r.capture_id), min(r.parser_version IS NOT NULL) FROM revisions r"
        " JOIN articles a ON a.id = r.article_id WHERE a.url = ?",
        seed_url,
    ) == [(2, 1)]

    history = rsarchive("history", seed_url, "--db", str(db))
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    (seed_id,) = second.rows("SELECT id FROM articles WHERE url = ?", seed_url)[0]
    assert f"(article {seed_id}, 2 revisions)" in lines[1]
    assert "first version:" in lines[4]
    assert "body: +2 words, +10 chars" in lines[5]

    diff = rsarchive("diff", seed_url, "--db", str(db))
    assert diff.returncode == 0, diff.stderr
    assert "revision 1 (" in diff.stdout and "-> revision 2 (" in diff.stdout
    minus = [line for line in diff.stdout.splitlines() if line.startswith("-Update 5/19")]
    plus = [line for line in diff.stdout.splitlines() if line.startswith("+Update 5/19")]
    assert "amicable in tone" in minus[0] and "frosty and guarded in tone" in plus[0]

    words = rsarchive("diff", str(seed_id), "--words", "--db", str(db))
    assert "[-amicable-] {+frosty and guarded+} in tone" in words.stdout
    as_json = json.loads(rsarchive("diff", seed_url, "--json", "--db", str(db)).stdout)
    assert (as_json["from"]["number"], as_json["to"]["number"]) == (1, 2)
    assert as_json["fields"] == {}  # title, subtitle and authors unchanged
    assert any(line.startswith("+Update 5/19") for line in as_json["body_diff"])


def test_recrawling_unchanged_pages_adds_no_revision_and_no_capture(site_server, tmp_path):
    db = tmp_path / "a.db"
    first = counts(crawl(site_server, db, *CASES))
    again = crawl(site_server, db, *CASES)
    assert counts(again) == first
    assert again.rows("SELECT count(*) FROM crawl_runs") == [(2,)]


def test_history_and_diff_of_an_unknown_article_exit_66_with_one_line(site_server, tmp_path):
    db = tmp_path / "a.db"
    crawl(site_server, db, "seed")
    for argv in (["history", "https://responsiblestatecraft.org/nope/"], ["diff", "999"]):
        proc = rsarchive(*argv, "--db", str(db))
        assert proc.returncode == 66
        assert proc.stderr.startswith(f"rsarchive {argv[0]}: no archived article ")
        assert len(proc.stderr.splitlines()) == 1
    out_of_range = rsarchive("diff", "1", "--from", "5", "--db", str(db))
    assert out_of_range.returncode == 64
    assert "has revisions 1 to 1" in out_of_range.stderr


# -- re-parse ------------------------------------------------------------------------------


def content_rows(db: Path) -> dict[str, list[tuple]]:
    """Every content column, ids turned into what they name, seen times left out."""
    queries = {
        "articles": "SELECT * FROM articles",
        "teasers": "SELECT t.*, p.url, a.url FROM teasers t"
        " LEFT JOIN articles p ON p.id = t.page_article_id"
        " LEFT JOIN articles a ON a.id = t.article_id",
        "authors": "SELECT a.url, au.name, au.url, x.position FROM article_authors x"
        " JOIN articles a ON a.id = x.article_id JOIN authors au ON au.id = x.author_id",
        "tags": "SELECT a.url, t.name, t.url, x.position FROM article_tags x"
        " JOIN articles a ON a.id = x.article_id JOIN tags t ON t.id = x.tag_id",
        "images": "SELECT a.url, x.* FROM article_images x JOIN articles a ON a.id = x.article_id",
        "revisions": "SELECT r.*, a.url, c.url, c.sha256 FROM revisions r"
        " JOIN articles a ON a.id = r.article_id LEFT JOIN captures c ON c.id = r.capture_id",
        "captures": "SELECT * FROM captures",
    }
    ignored = {
        "id", "article_id", "page_article_id", "author_id", "tag_id", "capture_id", "run_id",
        "first_seen_at", "last_seen_at", "changed_at",
    }  # fmt: skip
    out = {}
    with sqlite3.connect(db) as conn:
        for name, sql in queries.items():
            cursor = conn.execute(sql)
            keep = [i for i, d in enumerate(cursor.description) if d[0] not in ignored]
            out[name] = sorted(
                (tuple(row[i] for i in keep) for row in cursor), key=lambda r: repr(r)
            )
    return out


def test_crawl_then_reparse_into_a_fresh_database_gives_identical_rows(site_server, tmp_path):
    db, fresh = tmp_path / "crawled.db", tmp_path / "reparsed.db"
    every_page = [p.name for p in site_server.site.pages.values()]
    urls = ",".join(site_server.page_url(name) for name in every_page)
    crawled = scrapy_crawl("article", db, site_server.url, "-a", f"urls={urls}")
    assert crawled.returncode == 0, crawled.log
    served = len(site_server.requests)

    # Eleven pages, and the one load-more answer (feed_pages=1) of each of the nine whose feed
    # has more: the seed's brings two teasers, the others none.
    answers = [p for p in site_server.requests if p.startswith("/res/load_more_posts/")]
    assert len(answers) == 9
    assert crawled.rows("SELECT count(*) FROM captures WHERE feed_page_url IS NOT NULL") == [(9,)]
    seed_url = site_server.page_url("seed").rstrip("/")
    from_feed = [(3, f"{site_server.url}/saudi-israel-normalization"),
                 (4, f"{site_server.url}/pentagon-munitions-multiyear-contracts")]  # fmt: skip
    beyond_html = (
        "SELECT position, url FROM teasers WHERE page_url = ? AND position > 2 ORDER BY position"
    )
    assert crawled.rows(beyond_html, seed_url) == from_feed

    proc = rsarchive("reparse", "--db", str(db), "--into", str(fresh))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("re-parsed 20 captures")
    assert "11 pages and 9 load-more answers stored" in proc.stdout
    assert len(site_server.requests) == served  # no network

    before, after = content_rows(db), content_rows(fresh)
    assert before["articles"] and before["teasers"] and before["images"]
    # The seed's HTML holds teasers 0-2: 3 and 4 came from its load-more answer, and the rebuilt
    # archive has them where the crawl put them.
    with sqlite3.connect(fresh) as conn:
        assert conn.execute(beyond_html, (seed_url,)).fetchall() == from_feed
    for table in before:
        assert after[table] == before[table], table
    with sqlite3.connect(fresh) as conn:
        assert conn.execute("SELECT spider, status FROM crawl_runs").fetchall() == [
            ("reparse", "finished")
        ]
        # The rebuilt archive dates each article by its capture, not by the rebuild.
        assert conn.execute(
            "SELECT count(*) FROM articles a JOIN captures c ON c.url = a.url"
            " WHERE a.first_seen_at = c.fetched_at AND a.last_seen_at = c.fetched_at"
        ).fetchone() == (10,)

    # In place, with the same parser: nothing but last_seen_at moves.
    again = rsarchive("reparse", "--db", str(db))
    assert again.returncode == 0, again.stderr
    assert "0 new, 0 changed, 0 updated, 10 unchanged" in again.stdout
    assert content_rows(db) == before


def test_a_reparse_under_a_changed_parser_shows_in_history(
    site_server, tmp_path, monkeypatch, capsys
):
    db = tmp_path / "a.db"
    crawl(site_server, db, "seed", "two-authors")
    capsys.readouterr()

    from rsarchive.extract import rebelmouse
    from rsarchive.pipelines import split

    original, old_version = split.parse_page, rebelmouse.PARSER_VERSION

    def improved(selector, url):  # a parser release that drops the editor's note
        parsed = original(selector, url)
        if parsed.article and parsed.article.body_text.startswith("Update 5/19"):
            parsed.article.body_text = parsed.article.body_text.split("\n\n", 1)[1]
        return parsed

    monkeypatch.setattr(split, "parse_page", improved)
    monkeypatch.setattr(rebelmouse, "PARSER_VERSION", "rebelmouse-2099.1")
    assert main(["reparse", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "1 changed, 1 updated, 0 unchanged" in out  # the other article: only the version

    seed_url = site_server.page_url("seed").rstrip("/")
    assert main(["history", seed_url, "--db", str(db), "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [r["parser_version"] for r in history["revisions"]] == [
        old_version,
        "rebelmouse-2099.1",
    ]
    assert history["article"]["parser_version"] == "rebelmouse-2099.1"
    assert history["revisions"][1]["changes"][0].startswith("body: -")
    # Both revisions were read from the one capture: the page itself never changed.
    assert len({r["capture_id"] for r in history["revisions"]}) == 1


@pytest.mark.parametrize("since", ["nonsense", "2026-13-45", "2026-13"])
def test_reparse_rejects_a_bad_since_date(tmp_path, since):
    proc = rsarchive("reparse", "--db", str(tmp_path / "a.db"), "--since", since)
    assert proc.returncode == 64
    assert proc.stderr.startswith(f"rsarchive reparse: --since: bad date '{since}': use YYYY,")


def test_reparse_without_the_database_driver_says_so_in_one_line(tmp_path):
    if importlib.util.find_spec("pg8000"):
        pytest.skip("the pg8000 driver is installed here")
    proc = rsarchive("reparse", "--db", "postgresql+pg8000://u:secret@h/db")
    # A driver that is not installed is a configuration problem, as for every reading command.
    assert proc.returncode == 78
    assert proc.stderr == (
        "rsarchive reparse: cannot open postgresql+pg8000://u:***@h/db: No module named 'pg8000'\n"
    )
    other = rsarchive("reparse", "--db", "mysql://u:secret@h/db")
    assert other.returncode == 78 and "supports SQLite and PostgreSQL" in other.stderr


def test_reparse_of_zstd_captures_without_zstandard_says_what_to_install(
    site_server, tmp_path, monkeypatch, capsys
):
    from rsarchive.archive import codec

    db = tmp_path / "a.db"
    crawl(site_server, db, "seed")
    monkeypatch.setattr(codec, "zstandard", None)
    assert main(["reparse", "--db", str(db)]) == 78
    assert "zstd-compressed: install the zstandard package" in capsys.readouterr().err


def test_reparse_can_be_narrowed_to_one_url_or_to_recent_captures(
    site_server, tmp_path, capsys, monkeypatch
):
    db, one = tmp_path / "a.db", tmp_path / "one.db"
    crawl(site_server, db, "seed", "two-authors")
    capsys.readouterr()
    seed_url = site_server.page_url("seed")
    assert main(["reparse", "--db", str(db), "--url", seed_url, "--into", str(one)]) == 0
    # The page, and the load-more answer of its feed.
    assert capsys.readouterr().out.startswith("re-parsed 2 captures")
    with sqlite3.connect(one) as conn:
        assert conn.execute("SELECT url FROM articles").fetchall() == [(seed_url.rstrip("/"),)]
        assert conn.execute("SELECT max(position), count(*) FROM teasers").fetchall() == [(4, 5)]
    assert main(["reparse", "--db", str(db), "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out.startswith("re-parsed 0 captures")
    # A year or a month, as the query commands take them.
    assert main(["reparse", "--db", str(db), "--since", "2999"]) == 0
    assert capsys.readouterr().out.startswith("re-parsed 0 captures")
    assert main(["reparse", "--db", str(db), "--since", "2000-01"]) == 0
    assert "2 pages and 2 load-more answers stored" in capsys.readouterr().out

    # A path names a page of the site (RSARCHIVE_SITE_URL), as in `rsarchive show`.
    monkeypatch.setenv("RSARCHIVE_SITE_URL", site_server.url)
    path = urlsplit(seed_url).path
    assert main(["reparse", "--db", str(db), "--url", path]) == 0
    assert capsys.readouterr().out.startswith("re-parsed 2 captures")
    # A page the archive never fetched: nothing to re-parse is an error, not a silent 0.
    assert main(["reparse", "--db", str(db), "--url", "/2021/05/19/not-archived/"]) == 66
    err = capsys.readouterr().err
    missing = f"{site_server.url}/2021/05/19/not-archived"
    assert err == f"rsarchive reparse: no capture of {missing} in the archive\n"
    assert main(["reparse", "--db", str(db), "--url", path, "--since", "2999"]) == 66


# -- load-more answers are captures too ----------------------------------------------------

SEED_FEED = "node_id=1187554248"  # the seed's keep-reading block


def serve_feed_answer(server: SiteServer, pn: int, edit) -> None:
    """Answer page ``pn`` of the seed's load-more feed with ``edit(answer)`` (a JSON object)."""

    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = server.site.respond(path, origin=server.url)
        if SEED_FEED in path and f"pn={pn}" in path.split("&"):
            body = json.dumps(edit(json.loads(body))).encode()
        return status, headers, body

    server.handlers["/res/load_more_posts/data.js"] = answer


def last_run_stats(result: CrawlResult) -> dict:
    (raw,) = result.rows("SELECT stats FROM crawl_runs ORDER BY id DESC LIMIT 1")[0]
    return json.loads(raw)


def test_a_recrawl_with_an_unchanged_load_more_answer_adds_no_capture(site_server, tmp_path):
    db = tmp_path / "a.db"
    seed = site_server.page_url("seed")

    def crawl_seed() -> CrawlResult:
        result = scrapy_crawl("article", db, site_server.url, "-a", f"url={seed}",
                              "-a", "feed_pages=2")  # fmt: skip
        assert result.returncode == 0, result.log
        return result

    first = crawl_seed()
    feed_rows = "SELECT url, feed_position FROM captures WHERE feed_page_url = ? ORDER BY id"
    answers = first.rows(feed_rows, seed.rstrip("/"))
    assert [(("pn=2" in u), ("pn=3" in u), pos) for u, pos in answers] == [
        (True, False, 3),
        (False, True, 5),
    ]
    assert last_run_stats(first)["rsarchive/captures_new"] == 3
    teasers = first.rows("SELECT position, url, title FROM teasers ORDER BY position")
    assert len(teasers) == 7

    again = crawl_seed()
    assert again.rows("SELECT count(*) FROM captures") == [(3,)]
    stats = last_run_stats(again)
    assert stats["rsarchive/feed_pages_stored"] == 2 and "rsarchive/captures_new" not in stats
    assert again.rows("SELECT position, url, title FROM teasers ORDER BY position") == teasers

    # A changed answer is a new capture of it (and only of it).
    def retitle(doc: dict) -> dict:
        doc["posts_by_source"]["current_page"][0]["headline"] = "A new headline"
        del doc["posts_by_source"]["current_page"][0]["html"]
        return doc

    serve_feed_answer(site_server, 3, retitle)
    third = crawl_seed()
    assert last_run_stats(third)["rsarchive/captures_new"] == 1
    assert third.rows(feed_rows, seed.rstrip("/"))[:2] == answers
    (new_url, _), *_ = third.rows(feed_rows + " DESC", seed.rstrip("/"))
    assert new_url == answers[1][0]
    assert third.rows("SELECT title FROM teasers WHERE position = 5") == [("A new headline",)]


def test_an_answer_that_repeats_a_shown_post_or_leaves_the_site_is_replayed_as_crawled(
    site_server, tmp_path
):
    """The walk's filter (posts already shown, posts on other sites) is repeated by a replay."""
    db, fresh = tmp_path / "crawled.db", tmp_path / "reparsed.db"
    strikes = f"{site_server.url}/us-strikes-iraq-2666381402"  # teaser 1 in the seed's HTML

    def repeat(doc: dict) -> dict:
        doc["posts_by_source"]["current_page"] += [
            {"id": 2666381402, "headline": "Repeated by the feed", "raw_share_url": strikes},
            {"id": 1, "headline": "Elsewhere", "raw_share_url": "https://example.org/elsewhere/"},
        ]
        return doc

    serve_feed_answer(site_server, 2, repeat)
    crawled = scrapy_crawl(
        "article", db, site_server.url, "-a", f"url={site_server.page_url('seed')}"
    )
    assert crawled.returncode == 0, crawled.log
    # The repeat kept its place and title from the page; the off-site post is not a teaser.
    assert crawled.rows("SELECT position, title FROM teasers WHERE url = ?", strikes) == [
        (1, "US strikes in Iraq show risk of escalation to wider war")
    ]
    assert crawled.rows("SELECT count(*) FROM teasers WHERE url LIKE '%example.org%'") == [(0,)]
    assert crawled.rows("SELECT feed_repeats FROM captures WHERE feed_page_url IS NOT NULL") == [
        (json.dumps([strikes]),)
    ]

    proc = rsarchive("reparse", "--db", str(db), "--into", str(fresh))
    assert proc.returncode == 0, proc.stderr
    assert "1 pages and 1 load-more answers stored" in proc.stdout
    assert content_rows(fresh) == content_rows(db)


def test_reparse_in_place_of_an_edited_page_replays_only_its_current_capture(site_server, tmp_path):
    """In place, a same-parser reparse changes nothing: no old text or teaser order comes back."""
    db, fresh = tmp_path / "a.db", tmp_path / "fresh.db"
    seed_url = site_server.page_url("seed").rstrip("/")
    crawl(site_server, db, "seed")
    # The second crawl finds the page edited and its load-more answer reordered.
    edit_seed(site_server, b"amicable in tone", b"frosty and guarded in tone")

    def reverse(doc: dict) -> dict:
        doc["posts_by_source"]["current_page"].reverse()
        return doc

    serve_feed_answer(site_server, 2, reverse)
    second = crawl(site_server, db, "seed")
    assert second.rows("SELECT count(*) FROM captures") == [(4,)]  # two pages, two answers
    feed_teasers = "SELECT position, url FROM teasers WHERE position > 2 ORDER BY position"
    reordered = second.rows(feed_teasers)
    assert [url for _, url in reordered] == [
        f"{site_server.url}/pentagon-munitions-multiyear-contracts",
        f"{site_server.url}/saudi-israel-normalization",
    ]
    before = content_rows(db)
    history = rsarchive("history", seed_url, "--db", str(db), "--json")
    assert len(json.loads(history.stdout)["revisions"]) == 2

    for _ in range(2):
        proc = rsarchive("reparse", "--db", str(db))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("re-parsed 2 captures")
        assert "0 new, 0 changed, 0 updated, 1 unchanged" in proc.stdout
        assert content_rows(db) == before
        again = rsarchive("history", seed_url, "--db", str(db), "--json")
        assert again.stdout == history.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute(feed_teasers).fetchall() == reordered
        assert conn.execute("SELECT body_text FROM articles").fetchone()[0].count("frosty") == 1

    # Into a fresh archive every capture is replayed: the history is rebuilt, both revisions.
    proc = rsarchive("reparse", "--db", str(db), "--into", str(fresh))
    assert proc.returncode == 0, proc.stderr
    assert "1 new, 1 changed" in proc.stdout
    assert content_rows(fresh) == before

    # Reverted: the first body is back (stored once, under its first fetch time); it is the
    # current capture now, and a reparse in place still changes nothing.
    del site_server.overrides[SEED_PATH]
    third = crawl(site_server, db, "seed")
    assert third.rows("SELECT count(*) FROM revisions") == [(3,)]
    reverted = content_rows(db)
    proc = rsarchive("reparse", "--db", str(db))
    assert "0 new, 0 changed, 0 updated, 1 unchanged" in proc.stdout
    assert content_rows(db) == reverted


def test_an_author_with_a_comma_in_the_name_stays_one_author_across_revisions(
    site_server, tmp_path, capsys
):
    db = tmp_path / "a.db"
    status, headers, body = site_server.site.respond(SEED_PATH, origin=site_server.url)
    jr = body.replace(b"Anatol Lieven", b"Anatol Lieven, Jr.")
    site_server.overrides[SEED_PATH] = (status, headers, jr)
    crawl(site_server, db, "seed", "two-authors")
    site_server.overrides[SEED_PATH] = (status, headers, jr.replace(b"amicable", b"frosty"))
    second = crawl(site_server, db, "seed", "two-authors")
    seed_url = site_server.page_url("seed").rstrip("/")
    capsys.readouterr()

    assert main(["history", seed_url, "--db", str(db), "--json"]) == 0
    revisions = json.loads(capsys.readouterr().out)["revisions"]
    assert [r["authors"] for r in revisions] == [["Anatol Lieven, Jr."]] * 2
    assert revisions[1]["changes"] == ["body: ±0 words, -2 chars"]  # no "authors" change
    # Stored as a JSON list of names.
    assert second.rows(
        "SELECT DISTINCT r.authors FROM revisions r JOIN articles a ON a.id = r.article_id"
        " WHERE a.url = ?",
        seed_url,
    ) == [('["Anatol Lieven, Jr."]',)]

    # An archive written before keeps its joined bylines: they read as the names they were.
    two = site_server.page_url("two-authors").rstrip("/")
    (names,) = second.rows("SELECT authors FROM revisions WHERE capture_id IN"
                           " (SELECT id FROM captures WHERE url = ?)", two)[0]  # fmt: skip
    names = json.loads(names)
    assert len(names) == 2
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE revisions SET authors = ?", (", ".join(names),))
    assert main(["history", two, "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["revisions"][0]["authors"] == names
