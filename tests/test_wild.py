"""RebelMouse pages as they are in the wild, end to end: upgrading re-reads old rows, and a page
with no RebelMouse post block is archived by the generic extractor."""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SiteServer, rsarchive, running_site, scrapy_crawl

from rsarchive.demo import FixtureSite
from rsarchive.extract import rebelmouse

DATA = Path(__file__).resolve().parent / "data"
# Made by the previous release (parser rebelmouse-2026.11, commit b466bd1): `scrapy crawl
# article -a feed_pages=0` over the fixture pages cdata-jsonld-tags, body-chrome,
# syndication-section, browser-saved and us-strikes-iraq, served on 127.0.0.1:41681.
OLD_ARCHIVE = DATA / "archive-rebelmouse-2026.11.sqlite.gz"
OLD = "http://127.0.0.1:41681"


@pytest.fixture
def wild_site() -> Iterator[SiteServer]:
    """The fixture site with the pages of this issue, which the demo's site leaves out."""
    with running_site(FixtureSite(every_case=True)) as server:
        yield server


def old_archive(tmp_path: Path) -> Path:
    db = tmp_path / "old.db"
    db.write_bytes(gzip.decompress(OLD_ARCHIVE.read_bytes()))
    return db


def one(db: Path, sql: str, *params: object) -> object:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchone()[0]


def rows(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_reparse_after_upgrading_fixes_what_the_previous_parser_missed(tmp_path):
    db = old_archive(tmp_path)
    niger, gaza = f"{OLD}/niger-us-troops-withdrawal-2667985512", f"{OLD}/gaza-aid-pier-2667990044"
    gulf, sudan = f"{OLD}/gulf-bases-pentagon-2667993377", f"{OLD}/sudan-chad-refugees-2667996601"
    tags = "SELECT count(*) FROM article_tags t JOIN articles a ON a.id = t.article_id"
    tags += " WHERE a.url = ?"
    # What the previous parser left: every miss of the issue, as it reached users.
    assert rows(db, "SELECT DISTINCT parser_version FROM articles") == [("rebelmouse-2026.11",)]
    assert one(db, tags, niger) == 0
    assert one(db, "SELECT published_at FROM articles WHERE url = ?", niger) == "2024-05-20"
    assert "ALSO READ" in one(db, "SELECT body_text FROM articles WHERE url = ?", gaza)
    assert one(db, "SELECT section FROM articles WHERE url = ?", gulf) == "MSN"
    assert rows(db, "SELECT image_url FROM teasers WHERE page_url = ?", gaza) == [(None,), (None,)]
    images = "SELECT count(*) FROM article_images i JOIN articles a ON a.id = i.article_id"
    assert one(db, f"{images} WHERE a.url = ?", sudan) == 2

    # What the README tells users to run after upgrading (the schema may have moved too).
    proc = rsarchive("db", "upgrade", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    proc = rsarchive("reparse", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    # Two bodies changed (chrome out; a rendered tweet kept as a link), three rows were updated
    # in other fields or in their parser version only (us-strikes-iraq).
    assert "articles: 0 new, 2 changed, 3 updated, 0 unchanged" in proc.stdout

    version = rebelmouse.PARSER_VERSION
    assert rows(db, "SELECT DISTINCT parser_version FROM articles") == [(version,)]
    assert rows(
        db,
        "SELECT t.name, t.url FROM tags t JOIN article_tags l ON l.tag_id = t.id "
        "JOIN articles a ON a.id = l.article_id WHERE a.url = ? ORDER BY l.rowid",
        niger,
    ) == [
        ("Niger", f"{OLD}/tag/niger"),
        ("Sahel", f"{OLD}/tag/sahel"),
        ("US military", f"{OLD}/tag/us-military"),
        ("AFRICOM", f"{OLD}/tag/africom"),
    ]
    assert one(db, "SELECT published_at FROM articles WHERE url = ?", niger) == (
        "2024-05-20T14:15:00Z"
    )
    body = one(db, "SELECT body_text FROM articles WHERE url = ?", gaza)
    for chrome in ("ADVERTISEMENT", "ALSO READ", "RELATED:", "Read more", "Sign up"):
        assert chrome not in body
    assert "Related problems dogged the pier" in body
    assert one(db, "SELECT section FROM articles WHERE url = ?", gulf) == "Middle East"
    assert rows(db, "SELECT section FROM teasers WHERE page_url = ? ORDER BY position", gulf) == [
        ("Europe",),
        ("Asia-Pacific",),
    ]
    assert rows(db, "SELECT image_url FROM teasers WHERE page_url = ? ORDER BY position", gaza) == [
        (f"{OLD}/media-library/rafah-aid-trucks.jpg?id=52110345&width=980&quality=85",),
        (f"{OLD}/media-library/gaza-airdrop-c130.jpg?id=52110998&width=980&quality=85",),
    ]
    assert one(db, f"{images} WHERE a.url = ?", sudan) == 3
    assert "https://twitter.com/i/status/1800234567890123456" in one(
        db, "SELECT body_html FROM articles WHERE url = ?", sudan
    )
    stats = json.loads(one(db, "SELECT stats FROM crawl_runs WHERE spider = 'reparse'"))
    assert stats["rsarchive/layout_drift/section"] == 1
    assert stats["rsarchive/layout_drift/teaser_image"] == 1

    # history shows the parser change: a new revision where the text changed, and the parser
    # the row now comes from where only other fields did.
    proc = rsarchive("history", gaza, "--db", str(db), "--json")
    history = json.loads(proc.stdout)
    assert [r["parser_version"] for r in history["revisions"]] == ["rebelmouse-2026.11", version]
    assert history["revisions"][1]["changes"][0].startswith("body: -")
    proc = rsarchive("history", gulf, "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert f"now read by {version} (rebelmouse extractor): same text as revision 1" in proc.stdout

    # Once re-read, a second reparse changes nothing.
    again = rsarchive("reparse", "--db", str(db))
    assert "articles: 0 new, 0 changed, 0 updated, 5 unchanged" in again.stdout


def test_a_page_without_a_rebelmouse_post_block_is_archived_by_the_generic_extractor(
    wild_site, tmp_path
):
    db = tmp_path / "a.db"
    urls = ",".join(wild_site.page_url(c) for c in ("generic-wordpress", "body-chrome"))
    result = scrapy_crawl("article", db, wild_site.url, "-a", f"urls={urls}")
    assert result.returncode == 0, result.log
    wp = f"{wild_site.url}/2023/11/22/us-strikes-iraq"
    assert result.rows("SELECT url, extractor FROM articles ORDER BY url") == [
        (f"{wild_site.url}/2023/11/22/us-strikes-iraq", "generic"),
        (f"{wild_site.url}/gaza-aid-pier-2667990044", "rebelmouse"),
    ]
    title, published, body_text, body_html = result.rows(
        "SELECT title, published_at, body_text, body_html FROM articles WHERE url = ?", wp
    )[0]
    assert title == "US strikes in Iraq show risk of escalation to wider war"
    assert published == "2023-11-22T18:55:00Z"
    assert body_text.startswith("The United States has conducted two retaliatory")
    assert "Leave a Reply" not in body_text and "<script" not in body_html
    assert result.rows(
        "SELECT au.name FROM authors au JOIN article_authors l ON l.author_id = au.id "
        "JOIN articles a ON a.id = l.article_id WHERE a.url = ?",
        wp,
    ) == [("Samuel Whitcomb",)]
    # Teasers are not guessed on a page the RebelMouse parser could not read.
    assert result.rows("SELECT count(*) FROM teasers WHERE page_url = ?", wp) == [(0,)]
    show = rsarchive("show", wp, "--db", str(db))
    assert show.returncode == 0, show.stderr
    assert re.search(r"^  extractor +generic$", show.stdout, re.M)
    stats = json.loads(result.rows("SELECT stats FROM crawl_runs")[0][0])
    assert stats["rsarchive/layout_drift/whole_page"] == 1
    warnings = [line for line in result.log.splitlines() if "WARNING" in line and wp in line]
    assert len(warnings) == 1, warnings
    assert "no RebelMouse post block" in warnings[0]
    assert "read by the generic extractor" in warnings[0]


def test_reparse_reads_a_generic_page_with_the_rebelmouse_parser_once_it_recognises_it(
    wild_site, tmp_path, monkeypatch, capsys
):
    """A release that did not recognise a template stored the page as generic; the next one
    does, and `rsarchive reparse` moves the row back to the RebelMouse parser."""
    from rsarchive.cli import main
    from rsarchive.extract.xpath import X

    db = tmp_path / "a.db"
    url = wild_site.page_url("syndication-section")
    result = scrapy_crawl("article", db, wild_site.url, "-a", f"url={url}")
    assert result.returncode == 0, result.log
    key = url.rstrip("/")

    # The release that did not know the blocks: nothing matches them, so the page is generic.
    version = rebelmouse.PARSER_VERSION
    with monkeypatch.context() as m:
        m.setattr(rebelmouse, "BLOCKS", X("//div[@data-source='no-such-block']"))
        m.setattr(rebelmouse, "POST_BY_ELID", X("//no-such-post[@elid=$elid]"))
        m.setattr(rebelmouse, "PARSER_VERSION", "rebelmouse-2026.10-blind")
        assert main(["reparse", "--db", str(db)]) == 0
    assert result.rows("SELECT extractor, parser_version FROM articles WHERE url = ?", key) == [
        ("generic", "rebelmouse-2026.10-blind")
    ]
    assert result.rows("SELECT count(*) FROM teasers WHERE page_url = ?", key) == [(2,)]

    assert main(["reparse", "--db", str(db)]) == 0
    assert result.rows(
        "SELECT extractor, parser_version, section FROM articles WHERE url = ?", key
    ) == [("rebelmouse", version, "Middle East")]
    capsys.readouterr()
    assert main(["history", key, "--db", str(db), "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert history["article"]["extractor"] == "rebelmouse"
    parsers = [r["parser_version"] for r in history["revisions"]]
    assert parsers[-1] == version and "rebelmouse-2026.10-blind" in parsers
