"""Crawls that split pages on extraction processes (RSARCHIVE_EXTRACT_PROCESSES) store what a
crawl that splits them in line stores, and lose nothing when those processes die."""

from __future__ import annotations

import re

import pytest
from conftest import CrawlResult, SiteServer, scrapy_crawl
from test_fidelity import content_rows

# What a second crawl of the same pages cannot repeat: when it fetched them.
_TIMED = {"captures", "revisions"}


def crawl_every_page(server: SiteServer, db, *args: str, **kwargs) -> CrawlResult:
    urls = ",".join(server.page_url(p.name) for p in server.site.pages.values())
    return scrapy_crawl("article", db, server.url, "-a", f"urls={urls}", *args, **kwargs)


def stored(result: CrawlResult) -> dict[str, list[tuple]]:
    return {k: v for k, v in content_rows(result.db).items() if k not in _TIMED}


@pytest.mark.parametrize(
    "args",
    [(), ("-a", "feed_pages=0")],
    # with the feed the spider parses each page too; without, only the extraction process does
    ids=["feed", "no-feed"],
)
def test_a_crawl_on_extraction_processes_stores_what_one_in_line_stores(
    site_server, tmp_path, args
):
    in_line = crawl_every_page(site_server, tmp_path / "in-line.db", *args)
    assert in_line.returncode == 0, in_line.log
    elsewhere = crawl_every_page(
        site_server,
        tmp_path / "elsewhere.db",
        *args,
        settings={"RSARCHIVE_EXTRACT_PROCESSES": "2"},
    )
    assert elsewhere.returncode == 0, elsewhere.log
    before, after = stored(in_line), stored(elsewhere)
    assert before["articles"] and before["teasers"] and before["tags"]
    for table in before:
        assert after[table] == before[table], table
    # Drift found on a worker is logged and counted by the crawl, as in line.
    for result in (in_line, elsewhere):
        assert "layout_drift: " in result.log
    assert in_line.log.count("layout_drift: ") == elsewhere.log.count("layout_drift: ")
    # Pages (and load-more answers) that queued up shared commits: never more commits than
    # what was stored.
    for result in (in_line, elsewhere):
        stats = {k: int(v) for k, v in re.findall(r"'rsarchive/([a-z_]+)': (\d+)", result.log)}
        kept = stats["pages_stored"] + stats.get("feed_pages_stored", 0)
        assert 1 <= stats["page_commits"] <= kept


def test_when_the_extraction_processes_die_the_crawl_splits_in_line_and_loses_nothing(
    site_server, tmp_path
):
    # Without the feed, the spider parses no page: the ones left when the worker dies are
    # parsed in line from their bytes.
    in_line = crawl_every_page(site_server, tmp_path / "in-line.db", "-a", "feed_pages=0")
    assert in_line.returncode == 0, in_line.log
    killed = crawl_every_page(
        site_server,
        tmp_path / "killed.db",
        "-a",
        "feed_pages=0",
        settings={"RSARCHIVE_EXTRACT_PROCESSES": "1"},
        env={"RSARCHIVE_FAULT_KILL_AFTER": "extract:2"},  # the worker dies on its 2nd page
    )
    assert killed.returncode == 0, killed.log
    assert "the extraction processes stopped" in killed.log
    assert "splits pages in line" in killed.log
    assert killed.log.count("the extraction processes stopped") == 1
    assert "'rsarchive/extract_processes_lost': 1" in killed.log
    assert stored(killed) == stored(in_line)


def test_a_bad_number_of_extraction_processes_is_a_config_error(site_server, tmp_path):
    result = scrapy_crawl(
        "article", tmp_path / "a.db", site_server.url, "-a", f"url={site_server.page_url('seed')}",
        settings={"RSARCHIVE_EXTRACT_PROCESSES": "-1"},
    )  # fmt: skip
    assert "RSARCHIVE_EXTRACT_PROCESSES=-1 is below 0" in result.log
    assert not site_server.requests  # nothing fetched
