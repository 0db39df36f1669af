"""Query speed on a synthetic 100,000-article archive: search, show, export (with peak memory).

Builds the archive once (the real schema, FTS triggers included) into a cache file and reuses
it; then, in this process, through the same functions the ``rsarchive`` commands call:

  - search latency, median and p95, over ~20 queries (words, phrases, prefix, OR, NOT, filters)
    with ``limit=20``; target (issue 14): median <= 10 ms, p95 <= 30 ms;
  - show latency (find by URL + the whole article with its teasers and where it was teased);
  - export throughput (articles/s) for JSON Lines and CSV, and peak Python memory (tracemalloc)
    exporting 10k against 100k articles: flat means streaming.

    python benchmarks/bench_query.py [--articles 100000] [--cache PATH] [--rebuild]

Text is drawn from a Zipf-distributed vocabulary plus topic words, so bm25 has something to rank.
"""

from __future__ import annotations

import argparse
import bisect
import io
import itertools
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rsarchive.archive import make_engine  # noqa: E402
from rsarchive.archive.filters import Filters  # noqa: E402
from rsarchive.archive.models import TEASER_CONTENT_COLUMNS, teaser_content_hash  # noqa: E402
from rsarchive.archive.queries import open_reader  # noqa: E402
from rsarchive.archive.schema import prepare_schema, upgrade  # noqa: E402
from rsarchive.cli.export import write_csv, write_jsonl  # noqa: E402

SITE = "https://responsiblestatecraft.org"
SECTIONS = (
    "Middle East",
    "Europe",
    "Asia-Pacific",
    "Washington Politics",
    "Military Industrial Complex",
    "Global Crises",
    "North America",
    "Africa",
    "Latin America",
    "QiOSK",
)
TYPES = ("Analysis", "Opinion", "Reporting", "News")
TOPICS = {
    "iran": "iran tehran nuclear enrichment sanctions jcpoa khamenei irgc",
    "ukraine": "ukraine kyiv russia putin zelensky donbas ceasefire grain",
    "china": "china beijing taiwan xi strait semiconductors tariffs pla",
    "gaza": "gaza israel hamas netanyahu ceasefire hostages humanitarian rafah",
    "yemen": "yemen houthis saudi riyadh red sea shipping truce",
    "nato": "nato alliance finland sweden spending brussels article deterrence",
    "pentagon": "pentagon budget munitions contractors procurement lockheed audit",
    "congress": "congress senate aumf appropriations war powers resolution vote",
    "korea": "korea pyongyang kim missile seoul denuclearization summit",
    "venezuela": "venezuela maduro caracas oil sanctions migration opposition",
    "sudan": "sudan famine khartoum darfur rsf humanitarian aid",
    "syria": "syria assad damascus troops kurds idlib withdrawal",
}
GLUE = ("the", "of", "and", "to", "in", "a", "that", "is", "for", "on", "with", "as", "by", "it")
QUERIES = (
    "iran",
    "nuclear sanctions",
    '"nuclear enrichment"',
    "ukraine ceasefire",
    "taiw*",
    "gaza OR yemen",
    "iran NOT nuclear",
    "pentagon budget audit",
    '"war powers"',
    "tehran hostages",
    "houthis shipping",
    "kim missile summit",
    "Red-Sea",
    "semicond*",
    "famine darfur",
    "title:nato",
    "venezuela oil",
    "assad withdrawal",
)
FILTERED = {
    "--since/--until (a year)": [
        ("ukraine", Filters(since="2022-01-01T00:00:00Z", until="2023-01-01T00:00:00Z")),
        ("iran", Filters(since="2025-01-01T00:00:00Z")),
    ],
    "--author": [("china", Filters(author="Lieven")), ("nuclear", Filters(author="parsi"))],
    "--section / --type": [
        ("iran", Filters(section="Middle East")),
        ("nato", Filters(type="analysis")),
    ],
}


def vocabulary(rng: random.Random, size: int = 30000) -> tuple[list[str], list[float]]:
    """Made-up words (syllables) with Zipf weights, plus the common English glue words."""
    syllables = [a + b for a in "bcdfghklmnprstvz" for b in "aeiou"] + ["ar", "en", "is", "on"]
    words = list(GLUE)
    seen = set(words)
    while len(words) < size:
        w = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    cum = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(words))))
    return words, cum


def build(path: Path, n: int) -> None:
    rng = random.Random(20210519)
    words, cum = vocabulary(rng)
    total = cum[-1]
    topic_names = list(TOPICS)
    topic_words = {t: w.split() for t, w in TOPICS.items()}
    authors = [
        f"{rng.choice(words[200:3000]).title()} {rng.choice(words[200:3000]).title()}"
        for _ in range(400)
    ] + ["Anatol Lieven", "Trita Parsi", "Connor Echols"]
    tags = sorted({*(t.title() for t in TOPICS), *(w.title() for w in words[300:700])})

    def text(k: int, topics: list[str], rate: float = 0.04) -> str:
        picks = []
        for _ in range(k):
            if rng.random() < rate:
                picks.append(rng.choice(topic_words[rng.choice(topics)]))
            else:
                picks.append(words[bisect.bisect(cum, rng.random() * total)])
        return " ".join(picks)

    # The archive as a crawl creates it: the schema stamped with its migration version, which
    # every reader checks (a bare create_schema would be refused as "not this rsarchive's").
    engine = make_engine(f"sqlite:///{path}")
    try:
        prepare_schema(engine)
    finally:
        engine.dispose()
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO authors(id, name, url) VALUES (?, ?, ?)",
        [(i + 1, a, f"{SITE}/u/{a.lower().replace(' ', '-')}") for i, a in enumerate(authors)],
    )
    conn.executemany(
        "INSERT INTO tags(id, name, url) VALUES (?, ?, ?)",
        [(i + 1, t, f"{SITE}/tag/{t.lower()}") for i, t in enumerate(tags)],
    )
    t0 = time.perf_counter()
    start = 1_514_764_800  # 2018-01-01
    span = 8 * 365 * 86400
    batch: dict[str, list[tuple]] = {"a": [], "aa": [], "at": [], "t": []}

    def flush() -> None:
        conn.executemany(
            "INSERT INTO articles(id, url, post_id, slug, title, subtitle, type, section, "
            "published_at, body_text, body_html, word_count, content_hash, first_seen_at, "
            "last_seen_at, changed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            batch["a"],
        )
        conn.executemany(
            "INSERT INTO article_authors(article_id, author_id, position) VALUES (?,?,?)",
            batch["aa"],
        )
        conn.executemany(
            "INSERT INTO article_tags(article_id, tag_id, position) VALUES (?,?,?)", batch["at"]
        )
        # A teaser's content is stored once (teaser_contents), its sightings apart.
        conn.executemany(
            "INSERT OR IGNORE INTO teaser_contents(id, content_hash, title, has_more) "
            "VALUES (?, ?, ?, 0)",
            [
                (t[5], teaser_content_hash(teaser_content(t[5])), f"Teaser {t[5]}")
                for t in batch["t"]
            ],
        )
        conn.executemany(
            "INSERT INTO teaser_sightings(page_url, page_article_id, position, url, article_id, "
            "content_id, first_seen_at, last_seen_at) VALUES (?,?,?,?,?,?,?,?)",
            batch["t"],
        )
        for v in batch.values():
            v.clear()

    for i in range(1, n + 1):
        topics = rng.sample(topic_names, rng.choice((1, 1, 2, 3)))
        title = text(rng.randint(6, 12), topics, 0.3)
        slug = "-".join(title.split()[:6]) + f"-{i}"
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + span * i // n))
        paras = [text(max(20, int(rng.gauss(75, 30))), topics) for _ in range(rng.randint(6, 14))]
        body = "\n".join(paras)
        url = f"{SITE}/{slug}"
        batch["a"].append((
            i, url, str(2650000000 + i), slug, title.capitalize(),
            text(rng.randint(12, 25), topics).capitalize(), rng.choice(TYPES),
            rng.choice(SECTIONS), when, body, "".join(f"<p>{p}</p>" for p in paras),
            len(body.split()), f"{i:064x}", when, when, when,
        ))  # fmt: skip
        for pos, a in enumerate(rng.sample(range(1, len(authors) + 1), rng.choice((1, 1, 1, 2)))):
            batch["aa"].append((i, a, pos))
        for pos, t in enumerate(rng.sample(range(1, len(tags) + 1), rng.randint(1, 5))):
            batch["at"].append((i, t, pos))
        for pos, target in enumerate(rng.sample(range(1, n + 1), 3)):
            archived = target if target < i else None  # targets archived before the page
            batch["t"].append((
                url, i, pos, f"{SITE}/teased-{target}", archived, target, when, when,
            ))  # fmt: skip
        if i % 5000 == 0:
            flush()
            print(f"  built {i:,} articles ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    flush()
    conn.execute("COMMIT")
    conn.execute("INSERT INTO articles_fts(articles_fts) VALUES ('optimize')")
    conn.execute("ANALYZE")
    conn.close()


def teaser_content(target: int) -> dict[str, object]:
    """The content of the synthetic teaser of article ``target``: its title only."""
    content: dict[str, object] = dict.fromkeys(TEASER_CONTENT_COLUMNS)
    content.update(title=f"Teaser {target}", has_more=False)
    return content


def timed(fn: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of ``repeat`` calls (CPU: this process only, so a busy
    shared machine shows in wall time but not in CPU time)."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return wall, cpu


def latency_row(what: str, wall: list[float], cpu: list[float]) -> tuple[str, ...]:
    return (
        what,
        f"{statistics.median(wall):.1f}",
        f"{pct(wall, 95):.1f}",
        f"{statistics.median(cpu):.1f}",
        "",
    )


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each search query")
    parser.add_argument("--no-export", action="store_true", help="skip the export rows")
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.gettempdir()) / f"rsarchive-bench-{args.articles}.db"
    if args.rebuild or not cache.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{cache}{suffix}").unlink(missing_ok=True)
        print(f"building {args.articles:,} articles into {cache} ...", file=sys.stderr)
        t0 = time.perf_counter()
        build(cache, args.articles)
        print(f"built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    # A cache built by an older rsarchive: migrate it, as `rsarchive db upgrade` would.
    engine = make_engine(f"sqlite:///{cache}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    size = cache.stat().st_size
    rows: list[tuple[str, ...]] = []
    with open_reader(f"sqlite:///{cache}") as reader:
        n = reader.stats(runs=0)["totals"]["articles"]
        # Warm the page cache once, as a second search in a session would find it.
        for q in QUERIES:
            reader.search(q, limit=20)
        per_query: dict[str, tuple[float, float, int]] = {}
        wall: list[float] = []
        cpu: list[float] = []
        for q in QUERIES:
            w, c = timed(lambda q=q: reader.search(q, limit=20), args.repeat)
            hits = _count(reader, q)
            per_query[q] = (statistics.median(w), statistics.median(c), hits)
            wall += w
            cpu += c
        rows.append(latency_row(f"search, {len(QUERIES)} queries x {args.repeat}", wall, cpu))
        search_wall, search_cpu = wall, cpu
        parts = _where_time_goes(reader, args.repeat)
        for label, filtered in FILTERED.items():
            w, c = [], []
            for q, f in filtered:
                w2, c2 = timed(lambda q=q, f=f: reader.search(q, f, limit=20), args.repeat)
                w += w2
                c += c2
            rows.append(latency_row(f"search + {label}", w, c))
        rng = random.Random(7)
        urls = [f"{SITE}/" + reader.article(rng.randint(1, n))["slug"] + "/" for _ in range(50)]
        w, c = [], []
        for u in urls:
            w2, c2 = timed(lambda u=u: reader.article(reader.find_article_id(u, SITE)), 1)
            w += w2
            c += c2
        rows.append(latency_row("show by URL (+ authors, tags, teasers, teased-by)", w, c))
        rows.append(latency_row("list, newest 20", *timed(reader.list_articles, args.repeat * 4)))

        # Export: throughput without tracemalloc (it slows allocation), then peak memory with it,
        # for the newest ~10% (a date filter) and for everything.
        cut = reader.list_articles(limit=1, offset=n // 10)[0]["published_at"]
        exports = () if args.no_export else (("jsonl", write_jsonl), ("csv", write_csv))
        for fmt, write in exports:
            with open(os.devnull, "w", encoding="utf-8") as sink:
                w0, c0 = time.perf_counter(), time.process_time()
                count = write(reader.export(), sink)
                secs, cpu_secs = time.perf_counter() - w0, time.process_time() - c0
            peaks = []
            for filters in (Filters(since=cut), Filters()):
                tracemalloc.start()
                exported = write(reader.export(filters), _Discard())
                peaks.append((exported, tracemalloc.get_traced_memory()[1]))
                tracemalloc.stop()
            rows.append((
                f"export {fmt}, {count:,} articles",
                f"{count / secs:,.0f}/s",
                "",
                f"{count / cpu_secs:,.0f}/s",
                "peak " + " vs ".join(f"{p / 2**20:.1f} MiB ({k:,})" for k, p in peaks),
            ))  # fmt: skip
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\narchive: {n:,} articles, {size / 2**30:.2f} GiB ({cache}); "
        f"{os.cpu_count()} CPUs, load average {load:.1f}; SQLite {sqlite3.sqlite_version}\n"
    )
    head = ("what", "median ms (wall)", "p95 ms (wall)", "median ms (CPU)", "")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(wd) for h, wd in zip(head, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (wd + 1) + ":" if i else "-" * (wd + 2)
                         for i, wd in enumerate(widths)) + "|")  # fmt: skip
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [
            v.rjust(wd) for v, wd in zip(r[1:], widths[1:], strict=True)
        ]
        print("| " + " | ".join(cells) + " |")
    print("\nsearch, per query: median ms wall / CPU, matching articles")
    for q, (wm, cm, hits) in per_query.items():
        print(f"  {wm:6.1f} {cm:6.1f} {hits:7,}  {q}")
    print(
        f"\nsearch median / p95 (wall): {statistics.median(search_wall):.1f} / "
        f"{pct(search_wall, 95):.1f} ms; CPU {statistics.median(search_cpu):.1f} / "
        f"{pct(search_cpu, 95):.1f} ms (target <= 10 / <= 30 ms)"
    )
    print("\nwhere a search's CPU goes (median over the queries; ms):")
    for what, ms in parts.items():
        print(f"  {ms:6.2f}  {what}")
    newer = _bm25_on_another_sqlite(cache, args.repeat)
    if newer:
        print(f"  {newer[1]:6.2f}  the same bm25 statement on SQLite {newer[0]} (pysqlite3)")


def _where_time_goes(reader: object, repeat: int) -> dict[str, float]:
    """CPU of each stage of a search, medians over QUERIES: finding the matches, scoring them
    with bm25 to keep the best 20, and the whole search (+ snippets, article rows, authors)."""
    from sqlalchemy import text

    from rsarchive.archive.opening import FTS_TABLE
    from rsarchive.archive.queries import BM25_WEIGHTS
    from rsarchive.archive.searchquery import fts_query

    weights = ", ".join(str(w) for w in BM25_WEIGHTS)
    stages = {
        "match only (count of matching rows)": f"SELECT count(*) FROM {FTS_TABLE} "
        f"WHERE {FTS_TABLE} MATCH :q",
        "match + bm25, best 20 (ORDER BY bm25 LIMIT 20)": f"SELECT rowid, bm25({FTS_TABLE}, "
        f"{weights}) AS s FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q ORDER BY s, rowid LIMIT 20",
    }
    out: dict[str, list[float]] = {name: [] for name in (*stages, "whole search")}
    with reader.engine.connect() as conn:  # type: ignore[attr-defined]
        for q in QUERIES:
            params = {"q": fts_query(q)}
            for name, sql in stages.items():
                out[name].append(statistics.median(
                    timed(lambda sql=sql, p=params: conn.execute(text(sql), p).all(), repeat)[1]
                ))  # fmt: skip
    for q in QUERIES:
        out["whole search"].append(
            statistics.median(timed(lambda q=q: reader.search(q, limit=20), repeat)[1])
        )
    return {name: statistics.median(values) for name, values in out.items()}


def _bm25_on_another_sqlite(cache: Path, repeat: int) -> tuple[str, float] | None:
    """The ranking statement's CPU (median over QUERIES) on the SQLite that ``pysqlite3`` bundles,
    when it is installed (not a dependency): bm25 is most of a search, and its cost per match
    depends on the SQLite version. Read-only, after the reader above is closed."""
    try:
        import pysqlite3  # type: ignore[import-not-found]
    except ImportError:
        return None
    from rsarchive.archive.opening import FTS_TABLE
    from rsarchive.archive.queries import BM25_WEIGHTS
    from rsarchive.archive.searchquery import fts_query

    weights = ", ".join(str(w) for w in BM25_WEIGHTS)
    sql = (
        f"SELECT rowid, bm25({FTS_TABLE}, {weights}) AS s FROM {FTS_TABLE} "
        f"WHERE {FTS_TABLE} MATCH ? ORDER BY s, rowid LIMIT 20"
    )
    conn = pysqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        medians = []
        for q in QUERIES:
            params = (fts_query(q),)
            conn.execute(sql, params).fetchall()
            medians.append(statistics.median(
                timed(lambda p=params: conn.execute(sql, p).fetchall(), repeat)[1]
            ))  # fmt: skip
    finally:
        conn.close()
    return pysqlite3.sqlite_version, statistics.median(medians)


def _count(reader: object, q: str) -> int:
    """How many articles match ``q`` (what bm25 has to score)."""
    from sqlalchemy import text

    from rsarchive.archive.searchquery import fts_query

    with reader.engine.connect() as conn:  # type: ignore[attr-defined]
        return conn.execute(
            text("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH :q"),
            {"q": fts_query(q)},
        ).scalar_one()


class _Discard(io.TextIOBase):
    """A text sink that keeps nothing (so tracemalloc sees only the export's own memory)."""

    def write(self, s: str) -> int:
        return len(s)


if __name__ == "__main__":
    main()
