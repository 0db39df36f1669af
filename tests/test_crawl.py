"""End to end: real `scrapy crawl` runs against the fixture site served on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, CrawlResult, SiteServer, scrapy_crawl

from rsarchive.archive import Archive

# fetch_state records when each URL was last tried.
ARTICLE_COLUMNS_THAT_MAY_MOVE = {"last_seen_at", "last_attempt_at", "last_success_at"}


def crawl(server: SiteServer, db: Path, *cases: str, extra: tuple[str, ...] = ()) -> CrawlResult:
    urls = ",".join(server.page_url(c) for c in cases)
    return scrapy_crawl("article", db, server.url, "-a", f"urls={urls}", *extra)


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every table but crawl_runs, minus the columns a re-sighting may move."""
    out = {}
    with sqlite3.connect(db) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'"
                " AND name NOT LIKE 'articles_fts%' AND name NOT LIKE 'sqlite_%'"
                " AND name NOT IN ('crawl_runs', 'alembic_version')"
            )
        ]
        for table in tables:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            keep = [c for c in cols if c not in ARTICLE_COLUMNS_THAT_MAY_MOVE]
            out[table] = conn.execute(
                f"SELECT {', '.join(keep)} FROM {table} ORDER BY id"
            ).fetchall()
    return out


def stats_of_last_run(result: CrawlResult) -> dict:
    (raw,) = result.rows("SELECT stats FROM crawl_runs ORDER BY id DESC LIMIT 1")[0]
    return json.loads(raw)


def test_article_crawl_archives_article_and_teasers_in_order(site_server, tmp_path):
    db = tmp_path / "a.db"
    result = crawl(site_server, db, "seed", "us-strikes-iraq", "tag-listing")
    assert result.returncode == 0, result.log
    base = site_server.url
    articles = result.rows("SELECT url, title, section, post_id FROM articles ORDER BY url")
    assert articles == [
        (
            f"{base}/2021/05/19/blinken-lavrov-iceland",
            "What to make of the Blinken-Lavrov 'showdown' in Iceland",
            "Europe",
            "2652879530",
        ),
        (
            f"{base}/us-strikes-iraq-2666381402",
            "US strikes in Iraq show risk of escalation to wider war",
            "QiOSK",
            "2666381402",
        ),
    ]
    seed_teasers = result.rows(
        "SELECT t.position, t.title, t.section, a.title FROM teasers t"
        " LEFT JOIN articles a ON a.id = t.article_id WHERE t.page_url = ? ORDER BY t.position",
        f"{base}/2021/05/19/blinken-lavrov-iceland",
    )
    assert [(p, t, s) for p, t, s, _ in seed_teasers] == [
        (0, "Israel-Hamas deal: Talking vs. bombing, works", "Middle East"),
        (1, "US strikes in Iraq show risk of escalation to wider war", "QiOSK"),
        (2, "JFK: A man on the brink of revelation", "QiOSK"),
        # One page of the load-more feed by default (feed_pages=1), positions going on.
        (3, "Saudi normalization can’t be bought while Gaza burns", "Middle East"),
        (4, "The munitions boom is a blank check with a long tail", "Military Industrial Complex"),
    ]
    # The teaser whose target was archived in the same run points at it.
    assert [a for *_, a in seed_teasers] == [
        None,
        "US strikes in Iraq show risk of escalation to wider war",
        None,
        None,
        None,
    ]
    # A tag listing has no main article but keeps its five teasers.
    listing = result.rows(
        "SELECT count(*), max(page_article_id) FROM teasers WHERE page_url = ?", f"{base}/tag/iran"
    )
    assert listing == [(5, None)]
    # A capture per page, and one per load-more answer (each of the three feeds has more).
    assert result.rows(
        "SELECT feed_page_url IS NULL, count(*) FROM captures GROUP BY 1 ORDER BY 1"
    ) == [(0, 3), (1, 3)]
    assert result.rows("SELECT status, finish_reason FROM crawl_runs") == [("finished", "finished")]
    fts = result.rows(
        "SELECT a.title FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid"
        " WHERE articles_fts MATCH 'Reykjavik'"
    )
    assert fts == [("What to make of the Blinken-Lavrov 'showdown' in Iceland",)]
    assert result.rows("PRAGMA integrity_check") == [("ok",)]
    body = result.rows("SELECT body_text FROM articles WHERE post_id = '2652879530'")[0][0]
    assert "Israel-Hamas" not in body and "keep reading" not in body


def test_recrawl_of_unchanged_pages_moves_only_last_seen(site_server, tmp_path):
    db = tmp_path / "a.db"
    first = crawl(site_server, db, "seed", "two-authors", "tag-listing")
    assert first.returncode == 0, first.log
    before = dump(db)
    seen_before = first.rows("SELECT max(last_seen_at) FROM teasers")
    second = crawl(site_server, db, "seed", "two-authors", "tag-listing")
    assert second.returncode == 0, second.log
    assert dump(db) == before
    assert second.rows("SELECT count(*) FROM crawl_runs") == [(2,)]
    assert second.rows("SELECT max(last_seen_at) FROM teasers") >= seen_before
    assert stats_of_last_run(second)["rsarchive/articles_unchanged"] == 2


def test_url_file_relative_urls_and_env_settings(site_server, tmp_path):
    db = tmp_path / "env.db"
    url_file = tmp_path / "urls.txt"
    url_file.write_text(
        "# one per line\n\n/2021/05/19/blinken-lavrov-iceland/\n"
        f"{site_server.page_url('two-authors')}\n",
        encoding="utf-8",
    )
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    env |= {"RSARCHIVE_DATABASE_URL": f"sqlite:///{db}", "RSARCHIVE_SITE_URL": site_server.url}
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "article", "-a", f"url_file={url_file}",
         "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (2,)


def test_scrapy_list_names_the_spider():
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "list"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "article" in proc.stdout.split()


def test_feed_export_writes_one_object_per_page_without_raw_bytes(site_server, tmp_path):
    out = tmp_path / "out.jsonl"
    result = crawl(site_server, tmp_path / "a.db", "seed", "tag-listing", extra=("-O", str(out)))
    assert result.returncode == 0, result.log
    objects = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # Pages, and the load-more answer of each feed (its teasers, under the page's URL): the
    # seed's brings two, the listing's none.
    pages = [o for o in objects if "page_url" not in o]
    answers = {o["page_url"]: o for o in objects if "page_url" in o}
    more = answers[f"{site_server.url}/2021/05/19/blinken-lavrov-iceland"]
    assert [t["position"] for t in more["teasers"]] == [3, 4]
    assert answers[f"{site_server.url}/tag/iran"]["teasers"] == []
    assert "body" not in more and "headers" not in more
    assert len(pages) == 2
    by_url = {p["url"].removeprefix(site_server.url): p for p in pages}
    seed = by_url["/2021/05/19/blinken-lavrov-iceland/"]
    assert set(seed) == {"url", "requested_url", "status", "fetched_at", "article", "teasers"}
    assert seed["article"]["title"] == "What to make of the Blinken-Lavrov 'showdown' in Iceland"
    assert [t["position"] for t in seed["teasers"]] == [0, 1, 2]
    assert by_url["/tag/iran/"]["article"] is None
    assert "body" not in seed and "selector" not in seed
    # and the database was written as well
    assert result.rows("SELECT count(*) FROM articles") == [(1,)]


def test_bad_inputs_are_logged_counted_and_leave_no_partial_rows(site_server, tmp_path):
    page = site_server.site.respond
    site_server.overrides.update(
        {
            "/empty/": (200, {"Content-Type": "text/html"}, b""),
            "/report.pdf": (200, {"Content-Type": "application/pdf"}, b"%PDF-1.7 binary"),
            "/gone/": (410, {"Content-Type": "text/html"}, page("/nope", site_server.url)[2]),
            "/server-error/": (500, {"Content-Type": "text/html"}, b"<html>oops</html>"),
            "/garbage/": (200, {"Content-Type": "text/html"}, b"<html><body><p>hi</p>\x00\xff"),
        }
    )
    base = site_server.url
    urls = [
        f"{base}/empty/",
        f"{base}/report.pdf",
        f"{base}/gone/",
        f"{base}/server-error/",
        f"{base}/garbage/",
        site_server.page_url("not-found"),
        site_server.page_url("no-headline"),
        site_server.page_url("truncated"),
        site_server.page_url("wrong-charset"),
        site_server.page_url("invalid-jsonld"),
    ]
    result = scrapy_crawl("article", tmp_path / "bad.db", base, "-a", f"urls={','.join(urls)}")
    assert result.returncode == 0
    log = result.log
    for url, reason in [
        ("/empty/", "empty body"),
        ("/report.pdf", "not an HTML page (application/pdf)"),
        ("/gone/", "HTTP 410"),
        ("/garbage/", "neither a main article nor keep-reading teasers"),
        ("/yemen-truce-2667801142", "the main article has no headline"),
        ("/2020/02/14/pentagon-budget-request-explained/", "HTTP 404"),
    ]:
        assert f"Dropped {base}{url}: {reason}" in log, (url, log[-3000:])
    assert "/server-error/" in log
    assert "Traceback" not in log
    stats = stats_of_last_run(result)
    assert stats["rsarchive/dropped/empty"] == 1
    assert stats["rsarchive/dropped/not_html"] == 1
    assert stats["rsarchive/dropped/http_410"] == 1
    assert stats["rsarchive/dropped/http_404"] == 1
    assert stats["rsarchive/dropped/no_headline"] == 1
    assert stats["rsarchive/page_warning/jsonld_invalid"] == 1
    titles = {t for (t,) in result.rows("SELECT title FROM articles")}
    assert titles == {
        "Finland and Sweden are redrawing Europe’s security map",
        "Kyiv’s grain corridor — and the café diplomacy keeping it open",
        'Ottawa’s "2 percent" fixation misses the point',
    }
    # Only whole pages: no teaser, capture or author of a dropped page (besides the pages, two
    # load-more answers of feeds that have more).
    assert result.rows("SELECT count(*) FROM captures WHERE feed_page_url IS NULL") == [(3,)]
    assert result.rows("SELECT count(*) FROM captures WHERE feed_page_url IS NOT NULL") == [(2,)]
    assert result.rows("SELECT count(*) FROM teasers WHERE page_url LIKE '%yemen%'") == [(0,)]
    assert result.rows("SELECT name FROM authors WHERE name = 'José Martí-Ruiz'") == [
        ("José Martí-Ruiz",)
    ]
    assert result.rows("PRAGMA integrity_check") == [("ok",)]


def test_only_the_configured_host_is_fetched_or_stored(site_server, tmp_path):
    port = site_server.url.rsplit(":", 1)[1]
    site_server.overrides["/moved/"] = (
        301,
        {"Location": f"http://localhost:{port}/2021/05/19/blinken-lavrov-iceland/"},
        b"",
    )
    result = scrapy_crawl(
        "article",
        tmp_path / "a.db",
        site_server.url,
        "-a",
        f"urls={site_server.url}/moved/,https://example.org/elsewhere/",
    )
    assert result.returncode == 0
    assert "skipping https://example.org/elsewhere/: not on the configured site" in result.log
    # The redirect to another host was not followed: one request for it, nothing stored.
    assert site_server.requests.count("/moved/") == 1
    assert site_server.requests.count("/2021/05/19/blinken-lavrov-iceland/") == 0
    assert result.rows("SELECT count(*) FROM articles") == [(0,)]


def test_robots_txt_is_obeyed_and_the_user_agent_is_honest(site_server, tmp_path):
    site_server.overrides["/robots.txt"] = (
        200,
        {"Content-Type": "text/plain"},
        b"User-agent: *\nDisallow: /tag/\n",
    )
    result = crawl(site_server, tmp_path / "a.db", "seed", "tag-listing")
    assert result.returncode == 0
    assert "/tag/iran/" not in site_server.requests
    # The seed and the load-more answer of its feed.
    assert result.rows("SELECT count(*) FROM captures WHERE feed_page_url IS NULL") == [(1,)]
    (agent,) = site_server.user_agents
    assert agent.startswith("rsarchive/") and "+http" in agent


def test_missing_arguments_give_a_clear_error_not_a_traceback(site_server, tmp_path):
    result = scrapy_crawl("article", tmp_path / "a.db", site_server.url)
    assert "no URL given: use -a url=URL, -a urls=U1,U2 or -a url_file=PATH" in result.log
    assert "Traceback" not in result.log
    missing = scrapy_crawl("article", tmp_path / "a.db", site_server.url, "-a", "url_file=/nope")
    assert "cannot read url_file /nope" in missing.log
    assert site_server.requests == []


def test_scrapy_crawl_takes_a_plain_path_as_the_database(site_server, tmp_path):
    db = tmp_path / "plain.db"
    result = scrapy_crawl(
        "article", db, site_server.url, "-a", f"url={site_server.page_url('seed')}",
        settings={"RSARCHIVE_DATABASE_URL": str(db)},
    )  # fmt: skip
    assert result.returncode == 0, result.log
    assert result.rows("SELECT count(*) FROM articles") == [(1,)]


def test_demo_runs_offline_and_shows_the_archive(tmp_path):
    db = tmp_path / "demo.db"
    proc = subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", "demo", "--db", str(db)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "What to make of the Blinken-Lavrov" in proc.stdout
    assert "sqlite3 demo.db " in proc.stdout  # relative to where the demo ran
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (10,)
        # 24 in the pages' HTML, 2 from the seed's load-more feed (the fixture site has it).
        assert conn.execute("SELECT count(*) FROM teasers").fetchone() == (26,)
    # A second demo starts from a fresh file.
    again = subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", "demo", "--db", str(db)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM crawl_runs").fetchone() == (1,)


def test_demo_hint_works_when_pasted_after_the_readme_command(tmp_path):
    """The README's first command runs `.venv/bin/rsarchive demo` without activating the venv:
    the commands the demo suggests must run as pasted into that same shell."""
    script = Path(sys.executable).parent / "rsarchive"
    if not script.exists():
        pytest.skip("rsarchive is not installed as a script beside this Python")
    shell_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    db = tmp_path / "demo.db"
    proc = subprocess.run(
        [str(script), "demo", "--db", str(db)],
        cwd=tmp_path, env=shell_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "on purpose: the fixture site holds a missing page and a page without a headline" in (
        proc.stdout
    )
    assert "expected: some fixture pages are in drifted layouts" in proc.stdout
    hint = next(line.strip() for line in proc.stdout.splitlines() if " search iran " in line)
    assert hint.startswith(str(script)), hint  # outside the checkout: the script's full path
    pasted = subprocess.run(
        ["/bin/sh", "-c", hint],
        cwd=tmp_path, env=shell_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert pasted.returncode == 0, pasted.stderr
    assert "Iran" in pasted.stdout or "iran" in pasted.stdout
    assert "activate` once, then type plain `rsarchive" in proc.stdout


def demo(db: Path | str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    return subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", "demo", "--db", str(db)],
        cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_demo_records_its_runs_as_demo_runs(tmp_path):
    db = tmp_path / "demo.db"
    assert demo(db, tmp_path).returncode == 0
    with sqlite3.connect(db) as conn:
        (args,) = conn.execute("SELECT args FROM crawl_runs").fetchone()
    assert json.loads(args)["fixture_site"].endswith("fixtures")


def test_demo_refuses_a_database_url(tmp_path):
    proc = demo("sqlite:///x.db", tmp_path)
    assert proc.returncode == 64
    assert proc.stderr.strip().splitlines() == [
        "rsarchive demo: --db takes a file path, not a URL (sqlite:///x.db): "
        "the demo makes a fresh SQLite file"
    ]
    assert list(tmp_path.iterdir()) == []  # no directory "sqlite:"


def test_demo_will_not_replace_a_real_archive_or_another_file(tmp_path):
    archive_db = tmp_path / "rsarchive.db"
    with Archive(f"sqlite:///{archive_db}") as archive:
        archive.start_run("feed", {})
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n", encoding="utf-8")
    for path, why in [
        (archive_db, "the archive holds crawls that are not demo runs"),
        (notes, "it is not an rsarchive archive made by `rsarchive demo`"),
    ]:
        before = path.read_bytes()
        proc = demo(path, tmp_path)
        assert proc.returncode == 78
        assert proc.stderr.strip().splitlines() == [
            f"rsarchive demo: will not replace {path}: {why}; "
            "give another --db or remove it yourself"
        ]
        assert path.read_bytes() == before


def test_demo_with_bad_settings_in_the_environment(tmp_path):
    # The demo runs the article spider: a feed setting it does not use cannot stop it.
    ok = demo(tmp_path / "a.db", tmp_path, RSARCHIVE_FEED_MAX_PAGES="many")
    assert ok.returncode == 0, ok.stderr
    bad = demo(tmp_path / "b.db", tmp_path, RSARCHIVE_FOLLOW_MAX="many")
    assert bad.returncode == 78
    assert "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[-1] == (
        "rsarchive demo: configuration error: RSARCHIVE_FOLLOW_MAX='many' is not a whole number"
    )


@pytest.mark.parametrize("argv", [["demo", "--nope"], ["frobnicate"], []])
def test_cli_usage_errors_exit_64(argv):
    proc = subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 64
    assert "Traceback" not in proc.stderr


def test_an_archived_article_that_is_gone_is_marked_removed_not_deleted(site_server, tmp_path):
    db = tmp_path / "a.db"
    assert crawl(site_server, db, "seed", "two-authors").returncode == 0
    path = "/2021/05/19/blinken-lavrov-iceland/"
    site_server.overrides[path] = (410, {"Content-Type": "text/html"}, b"<html>Gone</html>")
    again = crawl(site_server, db, "seed", "two-authors")
    assert f"Dropped {site_server.url}{path}: HTTP 410" in again.log
    assert "is gone: the archived article is marked removed" in again.log
    rows = again.rows("SELECT title, removed_at IS NOT NULL, length(body_text) FROM articles")
    state = {title: (removed, length > 1000) for title, removed, length in rows}
    assert state == {
        "What to make of the Blinken-Lavrov 'showdown' in Iceland": (1, True),
        "Saudi normalization can’t be bought while Gaza burns": (0, True),
    }
    assert stats_of_last_run(again)["rsarchive/articles_removed"] == 1
    # It comes back: a later successful fetch clears the mark.
    del site_server.overrides[path]
    back = crawl(site_server, db, "seed")
    assert back.rows("SELECT count(*) FROM articles WHERE removed_at IS NOT NULL") == [(0,)]
