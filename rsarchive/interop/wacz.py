"""The archive's captures as a WACZ file (a web archive in a zip), packed by py-wacz.

The WARC comes from ``rsarchive.interop.warc``; py-wacz adds the CDXJ index (cdxj-indexer),
``pages/pages.jsonl`` (here: each archived article at its latest capture, with its headline) and
``datapackage.json`` with every file's hash. pywb (``wb-manager add --unpack-wacz``) and
ReplayWeb.page replay it.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Sequence
from contextlib import redirect_stdout
from pathlib import Path

from sqlalchemy import Engine, func, select

from rsarchive.archive import models as m
from rsarchive.archive.engine import READ_ONLY
from rsarchive.interop.warc import WarcExport, write_warc


class WaczError(RuntimeError):
    """py-wacz could not pack the WACZ (its own words are in the message)."""


def article_pages(engine: Engine, ids: Sequence[int]) -> list[dict[str, str]]:
    """``pages.jsonl`` entries: each article whose latest revision was read from one of the
    captures ``ids``, at that capture (its URL as fetched and its time), with its headline."""
    a, r, c = m.articles, m.revisions, m.captures
    latest = (
        select(r.c.article_id, func.max(r.c.id).label("revision_id"))
        .group_by(r.c.article_id)
        .subquery()
    )
    query = (
        select(a.c.title, c.c.id, c.c.url, c.c.final_url, c.c.fetched_at)
        .join(latest, latest.c.article_id == a.c.id)
        .join(r, r.c.id == latest.c.revision_id)
        .join(c, c.c.id == r.c.capture_id)
        .order_by(c.c.fetched_at, a.c.id)
    )
    chosen = set(ids)
    with engine.execution_options(**READ_ONLY).connect() as conn:
        return [
            {"url": row.final_url or row.url, "ts": row.fetched_at, "title": row.title or ""}
            for row in conn.execute(query)
            if row.id in chosen
        ]


def write_wacz(
    engine: Engine,
    ids: Sequence[int],
    output: Path,
    *,
    info: dict[str, str],
    title: str,
    warc_name: str,
) -> tuple[WarcExport, int]:
    """Pack the captures ``ids`` into the WACZ ``output`` (its WARC named ``warc_name``);
    returns the WARC's counts and the number of pages listed."""
    from wacz.main import main as wacz_main

    with tempfile.TemporaryDirectory(prefix="rsarchive-wacz-") as tmp:
        warc = Path(tmp) / warc_name
        with warc.open("wb") as out:
            result = write_warc(engine, ids, out, filename=warc.name, info=info)
        pages = article_pages(engine, ids)
        pages_file = Path(tmp) / "pages.jsonl"
        with pages_file.open("w", encoding="utf-8") as out:
            header = {"format": "json-pages-1.0", "id": "pages", "title": title}
            for page in [header, *pages]:
                out.write(json.dumps(page, ensure_ascii=False) + "\n")
        argv = ["create", "-o", str(output), str(warc), "--title", title]
        if pages:  # py-wacz wants at least one page when given a list
            argv += ["-p", str(pages_file)]
        log = io.StringIO()
        with redirect_stdout(log):  # py-wacz reports its progress on stdout
            code = wacz_main(argv)
        if code != 0:
            raise WaczError(log.getvalue().strip().splitlines()[-1])
    return result, len(pages)
