"""T32–T33 on PostgreSQL: odd charsets, NUL and odd code points, crawled into a live server
(PostgreSQL refuses NUL in text where SQLite takes it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg import PostgresServer, postgres_server
from sqlalchemy import create_engine, text

from faults.conftest import crawl
from faults.faultserver import FaultServer, ok

SEED = "/2021/05/19/blinken-lavrov-iceland/"
OLD_TITLE = "What to make of the Blinken-Lavrov 'showdown' in Iceland"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def test_T32_T33_charsets_nul_and_odd_code_points_on_postgresql(
    pg: PostgresServer, server: FaultServer, tmp_path
):
    seed = server.fixture("seed").decode()
    title = "Café “quoted” — naïve"
    odd = "Nul\x00here &#0; &#xD800; \ufffe \u202eevil\u202c \u0085 \U0001f600 end"
    pages = {
        "/cp1252/": (seed.replace(OLD_TITLE, title).encode("cp1252", "replace"),
                     "text/html; charset=windows-1252"),
        "/utf16/": (seed.replace(OLD_TITLE, title).encode("utf-16"), "text/html"),
        "/odd/": (seed.replace(OLD_TITLE, odd).replace("<p>", "<p>\x00NUL in the body ", 1)
                  .encode("utf-8", "surrogatepass"), "text/html; charset=utf-8"),
    }  # fmt: skip
    for path, (body, ctype) in pages.items():
        server.route(path, ok(body, ctype, headers={"X-Odd": "a\x00b\x01c"}))
    url = pg.new_database()
    urls = ",".join(server.url + p for p in pages)
    run = crawl(server, url, "article", f"urls={urls}", "feed_pages=0", log_dir=tmp_path)

    assert run.code == 0, run.log
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT url, title FROM articles")).all())
            ((body,),) = conn.execute(
                text("SELECT body_text FROM articles WHERE url LIKE '%/odd'")
            ).all()
            (captures,) = conn.execute(text("SELECT COUNT(*) FROM captures")).one()
    finally:
        engine.dispose()
    assert rows[f"{server.url}/cp1252"] == title
    assert rows[f"{server.url}/utf16"] == title
    stored = rows[f"{server.url}/odd"]
    assert stored.startswith("Nul") and stored.endswith("end") and "\x00" not in stored
    assert "NUL in the body" in body and "\x00" not in body
    assert captures == 3
