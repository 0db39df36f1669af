"""Search returns what the plain ranking query defines: the same articles, order, scores and
snippets, whichever shortcut ``Reader.search`` takes (page-only snippets, rank before joins,
filters checked on the best matches first).

The reference is one obvious SQL statement: every match joined to its article, filtered,
ordered by weighted bm25 then id, the snippet made in the same statement.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from rsarchive.archive import make_engine
from rsarchive.archive import queries as q
from rsarchive.archive.filters import Filters
from rsarchive.archive.queries import BM25_WEIGHTS, HIT_END, HIT_START, SNIPPET_TOKENS
from rsarchive.archive.schema import prepare_schema

WORDS = [
    "iran",
    "nuclear",
    "sanctions",
    "ukraine",
    "ceasefire",
    "taiwan",
    "strait",
    "gaza",
    "yemen",
    "houthis",
    "red",
    "sea",
]
GLUE = ["the", "of", "and", "to", "in", "a", "that", "is", "for", "on", "with", "as", "by", "it"]
SECTIONS = ("Middle East", "Europe", "Asia-Pacific", "Africa")
TYPES = ("Analysis", "Opinion", "News")
AUTHORS = ("Anatol Lieven", "Trita Parsi", "José Martí", "Connor Echols")
N = 240


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """N articles from a small vocabulary: most queries match many of them, and bodies that
    repeat exactly give equal scores (so the tie-break by id is pinned too)."""
    path = tmp_path_factory.mktemp("search") / "archive.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        prepare_schema(engine)
    finally:
        engine.dispose()
    rng = random.Random(1405)
    bodies = [
        "\n".join(
            " ".join(rng.choice(WORDS if rng.random() < 0.15 else GLUE) for _ in range(60))
            for _ in range(rng.randint(1, 4))
        )
        for _ in range(N // 3)
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO authors(id, name) VALUES (?, ?)", list(enumerate(AUTHORS, start=1))
    )
    for i in range(1, N + 1):
        title = " ".join(rng.choice(WORDS + GLUE) for _ in range(rng.randint(3, 8)))
        body = bodies[i % len(bodies)]  # every third-ish article shares a body
        when = f"20{18 + i % 8}-{1 + i % 12:02d}-15T12:00:00Z"
        conn.execute(
            "INSERT INTO articles(id, url, title, subtitle, type, section, published_at, "
            "body_text, content_hash, first_seen_at, last_seen_at, changed_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                i, f"https://example.org/a-{i}", title.capitalize(),
                rng.choice(["", "On " + rng.choice(WORDS)]), rng.choice(TYPES),
                rng.choice(SECTIONS), when, body, f"{i:064x}", when, when, when,
            ),
        )  # fmt: skip
        for pos, a in enumerate(rng.sample(range(1, len(AUTHORS) + 1), rng.choice((1, 1, 2)))):
            conn.execute(
                "INSERT INTO article_authors(article_id, author_id, position) VALUES (?,?,?)",
                (i, a, pos),
            )
    conn.execute("COMMIT")
    conn.close()
    return path


def reference(db: Path, fts: str, where: str = "", params: tuple = ()) -> list[tuple]:
    """(id, score, snippet, authors) of every match, best first: the definition of search."""
    weights = ", ".join(map(str, BM25_WEIGHTS))
    sql = (
        f"SELECT a.id, round(-bm25(articles_fts, {weights}), 4) AS score, "
        f"snippet(articles_fts, -1, ?, ?, '…', {SNIPPET_TOKENS}), "
        "(SELECT group_concat(name, '|') FROM (SELECT au.name FROM article_authors aa "
        " JOIN authors au ON au.id = aa.author_id WHERE aa.article_id = a.id "
        " ORDER BY aa.position)) "
        "FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid "
        f"WHERE articles_fts MATCH ? {where} "
        f"ORDER BY bm25(articles_fts, {weights}), a.id"
    )
    with sqlite3.connect(db) as conn:
        return [
            (i, score, snip, names.split("|") if names else [])
            for i, score, snip, names in conn.execute(sql, (HIT_START, HIT_END, fts, *params))
        ]


def found(reader: q.Reader, query: str, filters: Filters, limit: int, offset: int) -> list:
    return [
        (r["id"], r["score"], r["snippet"], r["authors"])
        for r in reader.search(query, filters, limit=limit, offset=offset)
    ]


QUERIES = (
    ("iran", "iran"),
    ("nuclear sanctions", "nuclear sanctions"),
    ('"red sea"', '"red sea"'),
    ("taiw*", "taiw*"),
    ("gaza OR yemen", "gaza OR yemen"),
    ("iran NOT nuclear", "iran NOT nuclear"),
    ("title:ukraine", "title:ukraine"),
    ("Red-Sea", '"Red-Sea"'),
    ("hou*", "hou*"),
)
FILTERS = (
    (Filters(), "", ()),
    (Filters(section="middle east"), "AND lower(a.section) = ?", ("middle east",)),
    (Filters(type="NEWS"), "AND lower(a.type) = ?", ("news",)),
    (
        Filters(author="jose"),
        "AND a.id IN (SELECT article_id FROM article_authors WHERE author_id = 3)",
        (),
    ),
    (
        Filters.from_strings(since="2021", until="2023-06"),
        "AND a.published_at >= ? AND a.published_at < ?",
        ("2021-01-01T00:00:00Z", "2023-07-01T00:00:00Z"),
    ),
    (
        Filters(section="Africa", type="opinion"),
        "AND lower(a.section) = ? AND lower(a.type) = ?",
        ("africa", "opinion"),
    ),
)


@pytest.mark.parametrize(("typed", "fts"), QUERIES)
def test_search_pages_are_the_plain_ranking_query_sliced(archive, typed, fts) -> None:
    with q.open_reader(f"sqlite:///{archive}") as reader:
        for filters, where, params in FILTERS:
            every = reference(archive, fts, where, params)
            assert reader.search_count(typed, filters) == len(every), (typed, filters)
            for limit, offset in ((20, 0), (7, 0), (7, 7), (5, 31), (20, max(0, len(every) - 3))):
                want = every[offset : offset + limit]
                assert found(reader, typed, filters, limit, offset) == want, (
                    typed, filters, limit, offset,
                )  # fmt: skip


def test_the_queries_here_match_many_articles_and_tie(archive) -> None:
    """The comparison above means something: pages, scores that tie, snippets with hits."""
    every = reference(archive, "iran")
    assert len(every) > 100
    scores = [score for _, score, _, _ in every]
    assert len(set(scores)) < len(scores)  # equal scores: the order among them is by id
    assert all(HIT_START + "iran" in snip.lower() for _, _, snip, _ in every)


@pytest.mark.parametrize(
    ("filters", "reads"),
    [
        (Filters(section="Africa"), "SEARCH articles USING INDEX ix_articles_lower_section "),
        (Filters(type="opinion"), "SEARCH articles USING INDEX ix_articles_lower_type "),
        (
            Filters(section="Africa", type="opinion"),
            "SEARCH articles USING INDEX ix_articles_lower_section ",
        ),
        (
            Filters.from_strings(since="2020", until="2021"),
            "SEARCH articles USING COVERING INDEX ix_articles_published_at ",
        ),
    ],
)
def test_filters_are_checked_through_an_index_before_any_match_is_scored(
    archive, filters, reads
) -> None:
    """Each filter is checked on a match, before bm25, through an index: section and type by a
    probe of ``lower(section)`` / ``lower(type)`` (migration 0008) for (value, rowid), dates
    against a list of ids read from ``published_at``'s. The article table itself is never read
    per match (that cost more than bm25), whatever the number of articles that pass."""
    weights = ", ".join(map(str, BM25_WEIGHTS))
    where = " AND ".join(
        str(c.compile(compile_kwargs={"literal_binds": True}))
        for c in filters.fts_clauses(q._fts.c.rowid)
    )
    sql = (
        f"SELECT rowid, bm25(articles_fts, {weights}) AS s FROM articles_fts "
        f"WHERE articles_fts MATCH 'iran' AND {where} ORDER BY s, rowid LIMIT 20"
    )
    with sqlite3.connect(archive) as conn:
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    assert plan[0].startswith("SCAN articles_fts VIRTUAL TABLE"), plan
    (step,) = [step for step in plan if " articles " in f"{step} "]
    assert step.startswith(reads), plan
