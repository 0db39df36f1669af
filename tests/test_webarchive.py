"""Web-archive interop: WARC / WACZ export checked by warcio, py-wacz and pywb; WARC import."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from conftest import SiteServer, rsarchive, running_site, scrapy_crawl
from test_fidelity import content_rows
from test_postgres import content, pg  # noqa: F401 (pg: the PostgreSQL server fixture)
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from rsarchive.interop.warc import http_headers

BIN = Path(sys.executable).parent


@dataclass
class Crawled:
    server: SiteServer
    db: Path

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def crawled(fixture_site, tmp_path_factory) -> Iterator[Crawled]:
    """Every fixture page crawled once (with its load-more answers), the site kept up."""
    db = tmp_path_factory.mktemp("crawl") / "crawled.db"
    with running_site(fixture_site) as server:
        urls = ",".join(server.page_url(p.name) for p in fixture_site.pages.values())
        result = scrapy_crawl("article", db, server.url, "-a", f"urls={urls}")
        assert result.returncode == 0, result.log
        yield Crawled(server, db)


def export(db: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    fmt = "wacz" if out.suffix == ".wacz" else "warc"
    proc = rsarchive("export", "--format", fmt, "--output", str(out), "--db", str(db), *args)
    assert proc.returncode == 0, proc.stderr
    return proc


def import_(db: Path, *files: Path | str, site: str, extra: tuple[str, ...] = ()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    env["RSARCHIVE_SITE_URL"] = site
    return subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", "import", *map(str, files), "--db", str(db),
         *extra],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def records(path: Path) -> list[tuple[str, dict[str, str], bytes]]:
    """(type, WARC headers, HTTP head + payload) of every record, as warcio reads them."""
    out = []
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh):
            head = record.http_headers.to_bytes() if record.http_headers else b""
            out.append(
                (record.rec_type, dict(record.rec_headers.headers), head + record.raw_stream.read())
            )
    return out


# -- export --------------------------------------------------------------------------------------


def test_the_warc_export_passes_warcio_check_and_index_and_holds_every_capture(crawled, tmp_path):
    out = tmp_path / "rs.warc.gz"
    proc = export(crawled.db, out)
    (captures,) = crawled.rows("SELECT count(*) FROM captures")[0]
    assert f"exported {captures} captures to {out}" in proc.stderr

    check = subprocess.run([BIN / "warcio", "check", "-v", out], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "digest pass" in check.stdout and "fail" not in check.stdout
    index = subprocess.run(
        [BIN / "warcio", "index", "-f", "warc-type,warc-target-uri,warc-date", out],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    types = Counter(json.loads(line)["warc-type"] for line in index.stdout.splitlines())
    assert types["warcinfo"] == 1
    assert types["request"] == captures
    assert types["response"] + types["revisit"] == captures and types["response"] > 0

    recs = records(out)
    kind, info, body = recs[0]
    assert kind == "warcinfo" and info["WARC-Type"] == "warcinfo"
    assert b"http-header-user-agent: rsarchive/" in body and b"robots: obey" in body
    # Each capture's time is its WARC-Date; every record is its own gzip member (warcio reads
    # the file member by member: a whole-file gzip would fail its check above).
    fetched = dict(crawled.rows("SELECT final_url, fetched_at FROM captures"))
    for kind, headers, block in recs[1:]:
        assert headers["WARC-Date"] == fetched[headers["WARC-Target-URI"]]
        assert headers["WARC-Type"] in ("response", "revisit", "request")
        if kind == "response":
            assert headers["WARC-Payload-Digest"].startswith("sha1:")
            head, _, payload = block.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert f"Content-Length: {len(payload)}".encode() in head
        if kind == "revisit":  # a body already written, under another URL
            assert headers["WARC-Profile"].endswith("/warc/1.1/revisit/identical-payload-digest")
            assert headers["WARC-Refers-To-Target-URI"] != headers["WARC-Target-URI"]
    # A load-more answer carries what re-importing it needs.
    answers = [h for _, h, _ in recs if "WARC-X-Rsarchive-Feed-Page-Url" in h]
    assert (
        len(answers)
        == crawled.rows("SELECT count(*) FROM captures WHERE feed_page_url IS NOT NULL")[0][0]
    )


def test_export_narrows_to_one_page_or_to_recent_captures(crawled, tmp_path):
    seed = crawled.server.page_url("seed")
    out = tmp_path / "seed.warc.gz"
    export(crawled.db, out, "--url", seed)
    uris = {h["WARC-Target-URI"] for kind, h, _ in records(out) if kind != "warcinfo"}
    assert seed in uris and all(u == seed or "/res/load_more_posts/" in u for u in uris)

    later = tmp_path / "later.warc.gz"
    proc = export(crawled.db, later, "--since", "2999-01-01")
    assert "exported 0 captures" in proc.stderr
    assert [kind for kind, _, _ in records(later)] == ["warcinfo"]

    nothing = rsarchive("export", "--format", "warc", "--db", str(crawled.db))
    assert nothing.returncode == 64 and "needs --output FILE" in nothing.stderr
    author = rsarchive(
        "export", "--format", "warc", "-o", str(out), "--author", "x", "--db", str(crawled.db)
    )
    assert author.returncode == 64 and "--author applies to jsonl and csv" in author.stderr


def test_a_coding_the_stored_body_no_longer_has_is_not_claimed(site_server, tmp_path):
    db = tmp_path / "a.db"
    url = site_server.page_url("seed")
    path = "/" + url.split("/", 3)[3]
    status, headers, body = site_server.site.respond(path, origin=site_server.url)
    packed = gzip.compress(body)
    site_server.overrides[path] = (status, {**headers, "Content-Encoding": "gzip"}, packed)
    result = scrapy_crawl("article", db, site_server.url, "-a", f"url={url}", "-a", "feed_pages=0")
    assert result.returncode == 0, result.log
    out = tmp_path / "a.warc.gz"
    export(db, out)
    (response,) = [block for kind, _, block in records(out) if kind == "response"]
    head, _, payload = response.partition(b"\r\n\r\n")
    assert payload == body  # stored decoded ...
    assert b"Content-Encoding" not in head  # ... so not claimed gzip
    assert f"Content-Length: {len(body)}".encode() in head  # the server said len(packed)
    assert subprocess.run([BIN / "warcio", "check", out], capture_output=True).returncode == 0


def test_http_headers_drop_transfer_coding_and_keep_a_coding_still_on_the_body():
    text = b"<html>hello</html>"
    sent = {"Content-Type": "text/html", "Transfer-Encoding": "chunked", "Content-Length": "5"}
    assert http_headers(sent, text) == [("Content-Type", "text/html"), ("Content-Length", "18")]
    packed = gzip.compress(text)
    assert ("Content-Encoding", "gzip") in http_headers({"Content-Encoding": "gzip"}, packed)
    assert http_headers({"Content-Encoding": "gzip, br"}, text) == []
    assert http_headers({"Content-Encoding": "deflate"}, text) == []


# -- import --------------------------------------------------------------------------------------


def test_round_trip_crawl_export_import_gives_the_rows_of_reparse_into(crawled, tmp_path):
    out, rebuilt, imported = tmp_path / "rs.warc.gz", tmp_path / "r.db", tmp_path / "i.db"
    export(crawled.db, out)
    proc = rsarchive("reparse", "--db", str(crawled.db), "--into", str(rebuilt))
    assert proc.returncode == 0, proc.stderr

    proc = import_(imported, out, site=crawled.server.url)
    assert proc.returncode == 0, proc.stderr
    (captures,) = crawled.rows("SELECT count(*) FROM captures")[0]
    assert f"{captures} response/revisit records; {captures} new captures" in proc.stdout
    expected, got = content_rows(rebuilt), content_rows(imported)
    assert expected["articles"] and expected["teasers"] and expected["revisions"]
    for table in expected:  # captures too: URLs, times, headers, bodies, feed columns
        assert got[table] == expected[table], table
    with sqlite3.connect(imported) as conn:
        assert conn.execute("SELECT spider, status FROM crawl_runs").fetchall() == [
            ("import", "finished")
        ]

    again = import_(imported, out, site=crawled.server.url)
    assert again.returncode == 0, again.stderr
    assert "0 new captures" in again.stdout
    assert f"{captures} already in the archive" in again.stdout
    assert content_rows(imported) == got


def test_round_trip_into_postgresql_gives_the_rows_of_reparse_into(crawled, pg, tmp_path):  # noqa: F811
    out = tmp_path / "rs.warc.gz"
    export(crawled.db, out)
    rebuilt, imported = pg.new_database(), pg.new_database()
    proc = rsarchive("reparse", "--db", str(crawled.db), "--into", rebuilt)
    assert proc.returncode == 0, proc.stderr
    proc = import_(imported, out, site=crawled.server.url)
    assert proc.returncode == 0, proc.stderr
    expected = content(rebuilt)
    assert expected["articles"] and expected["revisions"] and expected["captures"]
    assert content(imported) == expected
    again = import_(imported, out, site=crawled.server.url)
    assert again.returncode == 0 and "0 new captures" in again.stdout
    assert content(imported) == expected


def _warc(path: Path, entries: list[tuple[str, str, int, dict[str, str], bytes, str]]) -> None:
    """A WARC 1.0 file as other tools write it: (type, uri, status, headers, payload, date)."""
    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for kind, uri, status, headers, payload, date in entries:
            http = StatusAndHeaders(f"{status} X", list(headers.items()), protocol="HTTP/1.1")
            if kind == "revisit":
                record = writer.create_revisit_record(
                    uri, headers["digest"], "x", date, http_headers=http,
                    warc_headers_dict={"WARC-Date": date},
                )  # fmt: skip
            else:
                record = writer.create_warc_record(
                    uri, "response", payload=BytesIO(payload), length=len(payload),
                    http_headers=http, warc_headers_dict={"WARC-Date": date},
                )  # fmt: skip
            writer.write_record(record)


def _chunked(data: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + 999]), data[i : i + 999])
                    for i in range(0, len(data), 999)) + b"0\r\n\r\n"  # fmt: skip


def test_a_foreign_warc_imports_the_site_and_skips_the_rest_with_a_summary(fixture_site, tmp_path):
    site = "https://responsiblestatecraft.org"
    pages = {p.name: p for p in fixture_site.pages.values()}
    seed, strikes = pages["seed"], pages["us-strikes-iraq"]
    seed_html = fixture_site.respond(seed.url.removeprefix(site), origin=site)[2]
    strikes_html = fixture_site.respond(strikes.url.removeprefix(site), origin=site)[2]
    html = {"Content-Type": "text/html; charset=utf-8"}
    warc = tmp_path / "wget.warc.gz"
    _warc(warc, [
        # As wget keeps it: the bytes on the wire, chunked and gzipped.
        ("response", seed.url, 200,
         {**html, "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"},
         _chunked(gzip.compress(seed_html)), "2021-05-20T08:00:00Z"),
        ("response", "https://example.org/elsewhere/", 200, html, b"<html></html>",
         "2021-05-20T08:00:01Z"),
        ("response", f"{site}/media/logo.png", 200, {"Content-Type": "image/png"}, b"\x89PNG",
         "2021-05-20T08:00:02Z"),
        ("response", f"{site}/gone/", 404, html, b"<html>gone</html>", "2021-05-20T08:00:03Z"),
        ("response", strikes.url, 200, html, strikes_html, "2022-01-02T03:04:05.250Z"),
    ])  # fmt: skip
    db = tmp_path / "a.db"
    proc = import_(db, warc, site=site)
    assert proc.returncode == 0, proc.stderr
    assert "5 response/revisit records; 2 new captures: 2 pages" in proc.stdout
    assert "skipped: http_404: 1, not_html: 1, other_host: 1" in proc.stdout
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT a.url, a.first_seen_at, c.fetched_at, c.headers FROM articles a"
            " JOIN revisions r ON r.article_id = a.id JOIN captures c ON c.id = r.capture_id"
            " ORDER BY a.first_seen_at"
        ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [
        ("2021-05-20T08:00:00Z", "2021-05-20T08:00:00Z"),
        ("2022-01-02T03:04:05Z", "2022-01-02T03:04:05Z"),
    ]
    assert rows[0][0] == seed.url.rstrip("/")
    # Stored decoded, without the codings it no longer has.
    assert json.loads(rows[0][3]) == html


def test_a_truncated_warc_stops_at_the_bad_record_and_keeps_what_came_before(crawled, tmp_path):
    out = tmp_path / "rs.warc.gz"
    export(crawled.db, out)
    index = subprocess.run(
        [BIN / "warcio", "index", "-f", "offset,warc-type,warc-target-uri", out],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    entries = [json.loads(line) for line in index.stdout.splitlines()]
    # The largest page record after the first few (fetch order varies from run to run, and a
    # load-more answer's record is a few hundred bytes: damage "inside" it would land past it).
    size = {
        e["offset"]: int(n["offset"]) - int(e["offset"]) for e, n in itertools.pairwise(entries)
    }
    responses = [e for e in entries if e["warc-type"] == "response"][2:]
    cut_at = max(responses, key=lambda e: size.get(e["offset"], 0))
    before = {e.get("warc-target-uri") for e in entries[: entries.index(cut_at)]} - {None}
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(out.read_bytes()[: int(cut_at["offset"]) + 400])

    db = tmp_path / "a.db"
    proc = import_(db, cut, site=crawled.server.url)
    assert proc.returncode == 65, proc.stdout + proc.stderr
    # One line says it (the replay's own log lines, layout_drift and such, aside).
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("rsarchive import:")]
    assert line.startswith(f"rsarchive import: {cut}: corrupt or truncated record at offset ")
    assert f"offset {cut_at['offset']}:" in line
    with sqlite3.connect(db) as conn:
        kept = {u for (u,) in conn.execute("SELECT final_url FROM captures")}
    assert kept == before and kept  # everything before the bad record, nothing of it

    # Bytes overwritten inside a record: the same, at that record.
    data = out.read_bytes()
    at = int(cut_at["offset"])
    damaged = tmp_path / "damaged.warc.gz"
    middle = at + size[cut_at["offset"]] // 2
    damaged.write_bytes(data[:middle] + bytes(200) + data[middle + 200 :])
    proc = import_(tmp_path / "b.db", damaged, site=crawled.server.url)
    assert proc.returncode == 65
    assert f"corrupt or truncated record at offset {at}: " in proc.stderr

    garbage = tmp_path / "notes.warc"
    garbage.write_text("this is not a web archive\n" * 5)
    bad = import_(tmp_path / "c.db", garbage, site=crawled.server.url)
    assert bad.returncode == 65
    assert bad.stderr == (
        f"rsarchive import: {garbage}: corrupt or truncated record at offset 0: not a WARC record\n"
    )


def test_an_oversized_record_and_a_decompression_bomb_are_skipped_with_a_warning(tmp_path):
    site = "https://responsiblestatecraft.org"
    html = {"Content-Type": "text/html"}
    bomb = gzip.compress(b"<html>" + b" " * 3_000_000 + b"</html>")  # ~3 KiB -> 3 MB
    warc = tmp_path / "big.warc.gz"
    _warc(warc, [
        ("response", f"{site}/bomb/", 200, {**html, "Content-Encoding": "gzip"}, bomb,
         "2024-01-01T00:00:00Z"),
        ("response", f"{site}/big/", 200, html, b"<html>" + b"x" * 2_000_000 + b"</html>",
         "2024-01-01T00:00:01Z"),
    ])  # fmt: skip
    proc = import_(tmp_path / "a.db", warc, site=site, extra=("--max-size", "1000000"))
    assert proc.returncode == 0, proc.stderr
    assert "skipped: too_large: 2" in proc.stdout
    warnings = proc.stderr.splitlines()
    assert any("/bomb/: decodes to more than DOWNLOAD_MAXSIZE" in w for w in warnings)
    assert any("/big/: 2,000," in w and "over DOWNLOAD_MAXSIZE" in w for w in warnings)


def test_import_of_a_missing_file_exits_66_before_touching_the_archive(tmp_path):
    proc = import_(tmp_path / "a.db", tmp_path / "nope.warc.gz", site="https://example.org")
    assert proc.returncode == 66
    assert proc.stderr == f"rsarchive import: no such file: {tmp_path / 'nope.warc.gz'}\n"
    assert not (tmp_path / "a.db").exists()


# -- WACZ ----------------------------------------------------------------------------------------


def test_the_wacz_validates_lists_the_articles_and_imports_back(crawled, tmp_path):
    out = tmp_path / "rs.wacz"
    proc = export(crawled.db, out)
    articles = dict(crawled.rows("SELECT url, title FROM articles"))
    assert f"{len(articles)} pages listed" in proc.stderr
    check = subprocess.run([BIN / "wacz", "validate", "-f", out], capture_output=True, text=True)
    assert check.returncode == 0 and "is valid" in check.stdout, check.stdout
    with zipfile.ZipFile(out) as wacz:
        names = set(wacz.namelist())
        assert {"archive/rs.warc.gz", "indexes/index.cdx.gz", "pages/pages.jsonl",
                "datapackage.json"} <= names  # fmt: skip
        pages = [json.loads(line) for line in wacz.read("pages/pages.jsonl").splitlines()]
    assert pages[0]["format"] == "json-pages-1.0"
    listed = {p["url"].rstrip("/"): p["title"] for p in pages[1:]}
    assert listed == articles

    db = tmp_path / "a.db"
    proc = import_(db, out, site=crawled.server.url)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(db) as conn:
        assert dict(conn.execute("SELECT url, title FROM articles")) == articles


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# pywb pins redis==2.10.6, which scrapy-redis (the frontier) cannot live with, and its older
# releases pin a gevent that no longer starts: it gets a virtualenv of its own, made once.
PYWB_VENV = Path(__file__).resolve().parent.parent / ".cache" / "pywb-venv"


@pytest.fixture(scope="session")
def pywb_bin() -> Path:
    """The bin folder of a virtualenv holding pywb (created by the test set-up when missing)."""
    bin_dir = PYWB_VENV / "bin"
    if not (bin_dir / "wayback").exists():
        PYWB_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", PYWB_VENV], check=True)
        install = subprocess.run(
            [bin_dir / "pip", "install", "-q", "pywb>=2.10"], capture_output=True, text=True
        )
        if install.returncode != 0:
            message = f"could not install pywb: {install.stderr.strip()[-500:]}"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
    return bin_dir


def test_pywb_replays_an_article_from_the_wacz(crawled, tmp_path, pywb_bin):
    out = tmp_path / "rs.wacz"
    export(crawled.db, out)
    root = tmp_path / "pywb"
    root.mkdir()
    for argv in (["init", "rs"], ["add", "--unpack-wacz", "rs", str(out)]):
        subprocess.run([pywb_bin / "wb-manager", *argv], cwd=root, check=True, capture_output=True)
    (url, title, fetched_at) = crawled.rows(
        "SELECT c.final_url, a.title, c.fetched_at FROM articles a JOIN captures c"
        " ON c.url = a.url WHERE a.title IS NOT NULL ORDER BY a.id LIMIT 1"
    )[0]
    stamp = "".join(ch for ch in fetched_at if ch.isdigit())
    port = _free_port()
    server = subprocess.Popen(
        [pywb_bin / "wayback", "-p", str(port), "-b", "127.0.0.1"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        page, deadline = None, time.monotonic() + 60
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                replay = f"http://127.0.0.1:{port}/rs/{stamp}mp_/{url}"
                with urllib.request.urlopen(replay, timeout=10) as answer:
                    page = answer.read().decode("utf-8")
            except OSError:
                time.sleep(0.3)
        assert page is not None, "pywb did not answer"
        escaped = title.replace("’", "&#x27;").replace("'", "&#x27;")
        assert title in page or escaped in page
    finally:
        server.terminate()
        server.wait(timeout=20)
