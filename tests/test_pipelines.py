"""Pipeline steps on their own: split reuses the spider's tree, clean drops with reasons."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest
from conftest import scrapy_crawl
from parsel import Selector
from scrapy.exceptions import CloseSpider, DropItem
from scrapy.utils.test import get_crawler

from rsarchive.items import UNPARSED, FeedPage, Page, Teaser
from rsarchive.pipelines.clean import CleanPipeline
from rsarchive.pipelines.split import SplitPipeline
from rsarchive.pipelines.store import StorePipeline
from rsarchive.spiders.article import ArticleSpider

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SITE = "https://responsiblestatecraft.org"


def crawler(**settings):
    c = get_crawler(ArticleSpider, {"RSARCHIVE_SITE_URL": SITE, **settings})
    c.stats.open_spider()
    return c


def fixture_page(case: str, **overrides) -> Page:
    meta = json.loads((FIXTURES / case / "meta.json").read_text(encoding="utf-8"))
    body = (FIXTURES / case / "page.html").read_bytes()
    fields = {
        "url": meta["url"],
        "status": meta.get("status", 200),
        "fetched_at": "2026-11-25T12:00:00Z",
        "content_type": "text/html; charset=utf-8",
        "body": body,
        "selector": Selector(text=body.decode("utf-8")),
    }
    fields.update(overrides)
    return Page(**fields)


def test_split_reuses_the_tree_the_spider_parsed_instead_of_parsing_again():
    """The bytes say nothing useful here: only the already-parsed tree can yield the article."""
    page = fixture_page("seed", body=b"<html><body>not what was parsed</body></html>")
    out = SplitPipeline.from_crawler(crawler()).process_item(page)
    assert out.article.title == "What to make of the Blinken-Lavrov 'showdown' in Iceland"
    assert len(out.teasers) == 3


def test_a_page_the_spider_left_unparsed_is_parsed_from_its_bytes_when_split_in_line():
    # What a crawl with extraction processes does once they are gone: the page is read from
    # its bytes as the spider would have read it.
    seed = fixture_page("seed")
    headers = {"Content-Type": "text/html; charset=utf-8"}
    page = fixture_page("seed", selector=UNPARSED, headers=headers)
    out = SplitPipeline.from_crawler(crawler()).process_item(page)
    parsed = SplitPipeline.from_crawler(crawler()).process_item(seed)
    assert out.article == parsed.article and out.teasers == parsed.teasers
    # Bytes that turn out not to be HTML give nothing to split, and clean says why.
    c = crawler()
    headers = {"Content-Type": "application/json"}
    page = fixture_page("seed", selector=UNPARSED, headers=headers, body=b'{"posts": []}')
    out = SplitPipeline.from_crawler(c).process_item(page)
    assert out.selector is None and out.article is None and out.teasers == []
    with pytest.raises(DropItem, match="not an HTML page"):
        CleanPipeline.from_crawler(c).process_item(out)


def test_layout_drift_is_logged_and_counted(caplog):
    c = crawler()
    with caplog.at_level(logging.WARNING):
        SplitPipeline.from_crawler(c).process_item(fixture_page("drift-headline"))
    assert "layout_drift: headline came from a fallback selector on" in caplog.text
    assert c.stats.get_value("rsarchive/layout_drift/headline") == 1
    assert c.stats.get_value("rsarchive/layout_drift") >= 3


@pytest.mark.parametrize(
    ("overrides", "key", "message"),
    [
        ({"status": 404}, "http_404", "HTTP 404"),
        ({"content_type": "application/json"}, "not_html", "not an HTML page (application/json)"),
        ({"body": b"  \n"}, "empty", "empty body"),
        ({"url": "https://example.org/x/"}, "offsite", "redirected off the configured site"),
        ({"selector": None}, "not_html", "not an HTML page"),
    ],
)
def test_clean_drops_what_is_not_archivable_with_a_reason(overrides, key, message):
    c = crawler()
    page = SplitPipeline.from_crawler(c).process_item(fixture_page("seed"))
    for name, value in overrides.items():
        setattr(page, name, value)
    with pytest.raises(DropItem, match=re.escape(message)):
        CleanPipeline.from_crawler(c).process_item(page)
    assert c.stats.get_value(f"rsarchive/dropped/{key}") == 1


def test_clean_drops_an_article_without_headline():
    c = crawler()
    page = SplitPipeline.from_crawler(c).process_item(fixture_page("no-headline"))
    with pytest.raises(DropItem, match="the main article has no headline"):
        CleanPipeline.from_crawler(c).process_item(page)


def test_clean_keeps_the_first_of_repeated_teasers_and_drops_offsite_ones():
    c = crawler()
    page = SplitPipeline.from_crawler(c).process_item(fixture_page("seed"))
    page.teasers += [
        Teaser(position=3, url=page.teasers[0].url, title="again"),
        Teaser(position=4, url="https://elsewhere.example/post", title="sponsored"),
    ]
    out = CleanPipeline.from_crawler(c).process_item(page)
    assert [t.position for t in out.teasers] == [0, 1, 2]
    assert c.stats.get_value("rsarchive/teasers_offsite") == 1


def test_store_refuses_to_start_without_a_usable_database(tmp_path, caplog):
    (tmp_path / "a-file").write_text("not a directory")
    c = crawler(RSARCHIVE_DATABASE_URL=f"sqlite:///{tmp_path}/a-file/archive.db")
    c.spider = ArticleSpider.from_crawler(c, url=SITE)
    store = StorePipeline.from_crawler(c)
    with caplog.at_level(logging.ERROR), pytest.raises(CloseSpider):
        store.open_spider()
    assert "cannot open the archive database" in caplog.text
    store.spider_closed(c.spider, "database_error")


def test_crawl_with_a_bad_database_url_stops_before_any_request(site_server, tmp_path):
    result = scrapy_crawl(
        "article",
        tmp_path / "unused.db",
        site_server.url,
        "-a",
        f"url={site_server.page_url('seed')}",
        settings={"RSARCHIVE_DATABASE_URL": "nosuchdb://x"},
    )
    assert "cannot open the archive database nosuchdb://x" in result.log
    assert "Traceback" not in result.log
    assert site_server.requests == []


@pytest.mark.parametrize("kind", ["page", "feed page"])
def test_a_database_error_drops_the_item_counts_it_and_the_run_goes_on(tmp_path, caplog, kind):
    db = tmp_path / "archive.db"
    c = crawler(RSARCHIVE_DATABASE_URL=f"sqlite:///{db}")
    c.spider = ArticleSpider.from_crawler(c, url=SITE)
    page = SplitPipeline.from_crawler(c).process_item(fixture_page("seed"))
    page = CleanPipeline.from_crawler(c).process_item(page)
    item = page
    if kind == "feed page":
        item = FeedPage(
            url=f"{SITE}/res/load_more_posts/data.js?pn=2",
            page_url=page.url,
            fetched_at="2026-11-25T12:00:00Z",
            teasers=page.teasers,
            body=b'{"posts": []}',
            content_type="application/json",
        )
    store = StorePipeline.from_crawler(c)
    store.open_spider()
    try:
        # Another program broke the archive under the crawl: every write of a teaser fails.
        with sqlite3.connect(db) as conn:
            conn.execute("alter table teaser_sightings rename to teasers_gone")
        with caplog.at_level(logging.ERROR), pytest.raises(DropItem, match="database error"):
            asyncio.run(store.process_item(item))
        assert c.stats.get_value("rsarchive/store_failed") == 1
        # The reason in one line, with SQLite's code; no traceback for a database's own error.
        gone = "no such table: teaser_sightings (SQLITE_ERROR)"
        assert f"could not store {item.url}: {gone}" in caplog.text
        assert "Traceback" not in caplog.text
        # The page's transaction was rolled back whole: not even its capture is kept.
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from captures").fetchone() == (0,)
    finally:
        store.spider_closed(c.spider, "finished")
