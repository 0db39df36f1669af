"""`rsarchive search|show|list|authors|sections|tags|teasers|stats`: read the archive.

Text for people (aligned to the terminal, plain in a pipe), ``--json`` for scripts: JSON Lines
(one object a line) for the commands that list things, one JSON document for ``show`` and
``stats``. The queries themselves live in ``rsarchive.archive.queries``.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rsarchive.cli import (
    EXIT_OK,
    add_db_argument,
    database_url,
    read_errors,
    whole_number,
)

DEFAULT_SITE_URL = "https://responsiblestatecraft.org"


# -- shared by the query commands (and export) --------------------------------------------------


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--author", help="an author's name, or part of it (any case, accents optional: jose)"
    )
    group.add_argument("--tag", help="a tag, e.g. Iran (any case, accents optional)")
    group.add_argument("--section", help="a section, e.g. 'Middle East' (any case)")
    group.add_argument("--type", help="an article type, e.g. Analysis, Opinion (any case)")
    group.add_argument(
        "--since", metavar="DATE", help="published on or after: YYYY, YYYY-MM, YYYY-MM-DD or ISO"
    )
    group.add_argument(
        "--until", metavar="DATE", help="published on or before (a whole year, month or day)"
    )


def _count(value: str) -> int:
    return whole_number(value)  # bounded: a huge --limit is a usage error, not a traceback


def add_page_arguments(parser: argparse.ArgumentParser, default: int = 20) -> None:
    parser.add_argument(
        "--limit", type=_count, default=default, help="at most N results (default: %(default)s)"
    )
    parser.add_argument("--offset", type=_count, default=0, help="skip the first N results")


def add_json_argument(parser: argparse.ArgumentParser, what: str = "JSON Lines") -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} for scripts")


def filters_from(args: argparse.Namespace) -> Any:
    from rsarchive.archive.filters import Filters

    return Filters.from_strings(
        author=args.author,
        section=args.section,
        type=args.type,
        since=args.since,
        until=args.until,
        tag=args.tag,
    )


def site_url() -> str:
    """The site that relative paths (``/some-post/``) are resolved against."""
    return os.environ.get("RSARCHIVE_SITE_URL") or DEFAULT_SITE_URL


def reads_archive(func: Callable[[argparse.Namespace, Any], int]) -> Callable[..., int]:
    """Open the archive for ``func(args, reader)``; turn read errors into one line and the
    documented exit code."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        from rsarchive.archive import queries as q

        with read_errors():
            # Bad input is reported before the database is touched.
            if hasattr(args, "since"):
                args.filters = filters_from(args)
            with q.open_reader(database_url(args.db)) as reader:
                return func(args, reader)

    return run


def print_jsonl(rows: Iterable[dict[str, Any]]) -> None:
    write = sys.stdout.write
    for row in rows:
        write(json.dumps(row, ensure_ascii=False) + "\n")


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


def width() -> int | None:
    """Columns to fit: ``$COLUMNS`` or the terminal's; None in a pipe (nothing is cut)."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return max(40, shutil.get_terminal_size((100, 24)).columns)
    return None


def wrap_width(most: int = 100) -> int:
    """Width for wrapped prose (snippets, bodies): the terminal's, at most ``most``."""
    return min(width() or most, most)


def _fit(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    flex: int = -1,
    right: Sequence[int] = (),
) -> None:
    """Aligned columns; column ``flex`` (default: the last) is cut to fit the width."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    n = len(headers)
    flex %= n
    widths = [max([len(headers[i])] + [len(r[i]) for r in cells]) for i in range(n)]
    others = sum(w for i, w in enumerate(widths) if i != flex) + 2 * (n - 1)
    room = width()
    if room is not None:
        widths[flex] = max(min(widths[flex], room - others), 12)

    def line(values: Sequence[str]) -> str:
        out = []
        for i, v in enumerate(values):
            v = _fit(v, widths[i]) if i == flex else v
            last = i == n - 1
            out.append(v.rjust(widths[i]) if i in right else (v if last else v.ljust(widths[i])))
        return "  ".join(out).rstrip()

    print(line(headers))
    for r in cells:
        print(line(r))


def highlighter(machine: bool = False) -> Callable[[str], str]:
    """Snippet hit markers: ANSI bold on a terminal, [brackets] in a pipe and in JSON."""
    from rsarchive.archive.queries import HIT_END, HIT_START

    if not machine and sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        start, end = "\x1b[1m", "\x1b[0m"
    else:
        start, end = "[", "]"
    return lambda s: s.replace(HIT_START, start).replace(HIT_END, end)


def _day(value: str | None) -> str:
    return (value or "")[:10]


# -- commands ------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="full-text search, best match first",
        description="Full-text search over titles, subtitles and bodies (SQLite FTS5), ranked "
        'by bm25 with the title weighted highest. Words must all appear; "a phrase"; OR; NOT '
        "(iran NOT nuclear); prefix* ; title:word. A word with punctuation (U.S.-Iran) is "
        "searched as the phrase of its parts.",
    )
    p.add_argument("query", help="the search, e.g. 'iran NOT nuclear' or '\"arms control\"'")
    add_filter_arguments(p)
    add_page_arguments(p)
    add_json_argument(p)
    add_db_argument(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("show", help="one article: metadata, body, teasers, where it was teased")
    p.add_argument(
        "ref", metavar="URL|ID", help="the article's URL, a path on the site, its id or its post id"
    )
    p.add_argument(
        "--format",
        choices=("text", "markdown", "html"),
        default="text",
        help="how to print the article (default: %(default)s)",
    )
    add_json_argument(p, "one JSON document")
    add_db_argument(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("list", help="articles, newest first (or --sort)")
    add_filter_arguments(p)
    add_page_arguments(p)
    p.add_argument(
        "--sort",
        choices=("newest", "oldest", "title", "words", "changed"),
        default="newest",
        help="order: newest or oldest published first, by title, longest first, or most "
        "recently changed first (default: %(default)s)",
    )
    add_json_argument(p)
    add_db_argument(p)
    p.set_defaults(func=cmd_list)

    for kind in ("authors", "sections", "tags"):
        p = sub.add_parser(kind, help=f"{kind} with their article counts")
        add_json_argument(p)
        add_db_argument(p)
        p.set_defaults(func=cmd_counts, kind=kind)

    p = sub.add_parser("teasers", help="the keep-reading feed seen on a page, in order")
    p.add_argument("page", metavar="URL", help="the page's URL (or a path on the site)")
    add_json_argument(p)
    add_db_argument(p)
    p.set_defaults(func=cmd_teasers)

    p = sub.add_parser("stats", help="totals, articles per month, the last crawl runs")
    p.add_argument("--runs", type=_count, default=10, help="how many runs (default: %(default)s)")
    add_json_argument(p, "one JSON document")
    add_db_argument(p)
    p.set_defaults(func=cmd_stats)


@reads_archive
def cmd_search(args: argparse.Namespace, reader: Any) -> int:
    rows = reader.search(args.query, args.filters, limit=args.limit, offset=args.offset)
    if not rows:  # stdout stays empty (no JSON Lines): a script still parses it
        from rsarchive.archive.searchquery import lowercase_hint

        print(f"no matches{lowercase_hint(args.query)}", file=sys.stderr)
        return EXIT_OK
    if args.json:
        mark = highlighter(machine=True)
        print_jsonl({**r, "snippet": mark(r["snippet"])} for r in rows)
        return EXIT_OK
    # A short page is the last one: its total is known without counting the matches again.
    if len(rows) < args.limit:
        total = args.offset + len(rows)
    else:
        total = reader.search_count(args.query, args.filters)
    mark = highlighter()
    wrap = wrap_width() - 5
    for n, r in enumerate(rows, start=args.offset + 1):
        print(f"{n:>3}. {r['title']}")
        about = [_day(r["published_at"]), r["type"], r["section"], ", ".join(r["authors"])]
        if r["removed_at"]:
            about.append(f"removed {_day(r['removed_at'])}")
        print(f"     {' · '.join(x for x in about if x)} · id {r['id']}")
        print(f"     {r['url']}")
        snippet = " ".join(r["snippet"].split())
        for text_line in textwrap.wrap(snippet, wrap):
            print(f"     {mark(text_line)}")
        print()
    from rsarchive.archive.searchquery import lowercase_hint

    print_more(len(rows), total, args.offset, "matches", lowercase_hint(args.query))
    return EXIT_OK


def print_more(shown: int, total: int, offset: int, noun: str, hint: str = "") -> None:
    """After a page of text results: how many there are, and how to see the next ones (on
    stderr, so a pipe gets the results alone)."""
    if offset == 0 and shown >= total:
        singular = {"matches": "match", "articles": "article"}.get(noun, noun)
        note = f"{total:,} {singular if total == 1 else noun}"
    else:
        first, last = offset + 1, offset + shown
        note = (
            f"showing {first:,}-{last:,} of {total:,}"
            if offset
            else f"showing {shown:,} of {total:,}"
        )
        if last < total:
            note += f"; --offset {last} for more"
    print(note + hint, file=sys.stderr)


@reads_archive
def cmd_list(args: argparse.Namespace, reader: Any) -> int:
    rows = reader.list_articles(args.filters, limit=args.limit, offset=args.offset, sort=args.sort)
    if args.json:
        print_jsonl(rows)
        return EXIT_OK
    total = reader.count_articles(args.filters)
    if not rows:
        print("no articles" + (f" past {args.offset:,} (of {total:,})" if total else ""),
              file=sys.stderr)  # fmt: skip
        return EXIT_OK
    # On a terminal long sections and bylines are cut to leave the title room; in a pipe
    # nothing is cut (width() is None there).
    cut = _fit if width() is not None else (lambda text, _room: text)
    print_table(
        ("ID", "PUBLISHED", "SECTION", "AUTHORS", "TITLE"),
        [
            (
                r["id"],
                _day(r["published_at"]),
                cut(r["section"] or "", 20),
                cut(", ".join(r["authors"]), 28),
                r["title"] + (" (removed)" if r["removed_at"] else ""),
            )
            for r in rows
        ],
        right=(0,),
    )
    print_more(len(rows), total, args.offset, "articles")
    return EXIT_OK


@reads_archive
def cmd_counts(args: argparse.Namespace, reader: Any) -> int:
    rows = reader.counts(args.kind)
    if args.json:
        print_jsonl(rows)
        return EXIT_OK
    if not rows:
        print(f"no {args.kind}", file=sys.stderr)
        return EXIT_OK
    print_table(
        ("ARTICLES", args.kind[:-1].upper()), [(r["articles"], r["name"]) for r in rows], right=(0,)
    )
    return EXIT_OK


@reads_archive
def cmd_teasers(args: argparse.Namespace, reader: Any) -> int:
    rows = reader.teasers(args.page, site_url())
    if args.json:
        print_jsonl(rows)
        return EXIT_OK
    print_table(
        ("POS", "ARCHIVED", "FIRST SEEN", "LAST SEEN", "TITLE", "URL"),
        [
            (
                r["position"],
                f"yes #{r['article_id']}" if r["archived"] else "no",
                _day(r["first_seen_at"]),
                _day(r["last_seen_at"]),
                r["title"],
                r["url"],
            )
            for r in rows
        ],
        flex=4,
        right=(0,),
    )
    return EXIT_OK


@reads_archive
def cmd_stats(args: argparse.Namespace, reader: Any) -> int:
    stats = reader.stats(runs=args.runs)
    if args.json:
        print_json(stats)
        return EXIT_OK
    t = stats["totals"]
    print_table(
        ("TOTALS", ""),
        [
            ("articles", f"{t['articles']:,}"),
            ("removed", f"{t['removed']:,}"),
            ("revisions", f"{t['revisions']:,}"),
            ("authors", f"{t['authors']:,}"),
            ("tags", f"{t['tags']:,}"),
            ("teasers", f"{t['teasers']:,} on {t['teaser_pages']:,} pages"),
            (
                "captures",
                f"{t['captures']:,} ({t['feed_captures']:,} load-more answers): "
                f"{_size(t['capture_bytes'])} received, "
                f"{_size(t['capture_bytes_stored'])} stored",
            ),
        ],
    )
    if stats["per_month"] or stats["undated"]:
        print()
        most = max((r["articles"] for r in stats["per_month"]), default=1)
        bar = max((width() or 70) - 20, 10)
        rows = [
            (r["month"], r["articles"], "#" * max(1, round(r["articles"] / most * min(bar, 50))))
            for r in stats["per_month"]
        ]
        if stats["undated"]:
            rows.append(("undated", stats["undated"], ""))
        print_table(("MONTH", "ARTICLES", ""), rows, right=(1,))
    if stats["runs"]:
        print()
        print_table(
            ("RUN", "SPIDER", "STARTED", "FINISHED", "STATUS", "EXIT", "REASON"),
            [
                (
                    r["id"],
                    r["spider"],
                    r["started_at"],
                    r["finished_at"] or "",
                    r["status"],
                    "" if r["exit_code"] is None else r["exit_code"],
                    r["finish_reason"] or "",
                )
                for r in stats["runs"]
            ],
            right=(0, 5),
        )
    return EXIT_OK


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@reads_archive
def cmd_show(args: argparse.Namespace, reader: Any) -> int:
    art = reader.article(reader.find_article_id(args.ref, site_url()))
    if args.json:
        print_json(art)
    elif args.format == "markdown":
        sys.stdout.write(_markdown(art))
    elif args.format == "html":
        sys.stdout.write(_html(art))
    else:
        sys.stdout.write(_text(art))
    return EXIT_OK


def _facts(art: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [
        ("type", art["type"]),
        ("section", art["section"]),
        ("authors", ", ".join(a["name"] for a in art["authors"])),
        ("tags", ", ".join(t["name"] for t in art["tags"])),
        ("published", art["published_at"]),
        ("modified", art["modified_at"]),
        ("url", art["url"]),
        ("first seen", art["first_seen_at"]),
        ("last seen", art["last_seen_at"]),
        ("changed", art["changed_at"]),
        ("removed", art["removed_at"]),
        ("words", f"{art['word_count']:,}" if art["word_count"] is not None else None),
        ("revisions", str(art["revisions"])),
        ("id", f"{art['id']} (post id {art['post_id']})" if art["post_id"] else str(art["id"])),
        # Only the exception is worth a line: a page the RebelMouse parser could not read.
        ("extractor", "generic" if art.get("extractor") == "generic" else None),
    ]
    return [(k, v) for k, v in facts if v]


def _text(art: dict[str, Any]) -> str:
    wrap = wrap_width()
    out = [art["title"]]
    if art["subtitle"]:
        out += textwrap.wrap(art["subtitle"], wrap)
    out.append("")
    out += [f"  {k:<11} {v}" for k, v in _facts(art)]
    out.append("")
    for para in (art["body_text"] or "").split("\n"):
        if para.strip():
            out += [*textwrap.wrap(para.strip(), wrap), ""]
    out.append(f"Keep reading: {len(art['teasers'])} teasers on this page")
    for t in art["teasers"]:
        state = f"archived #{t['article_id']}" if t["archived"] else "not archived"
        out.append(f"  {t['position']:>2}. {t['title']}  [{state}]")
        out.append(f"      {t['url']}")
    out.append("")
    n = len(art["teased_by"])
    out.append(f"Teased on: {n} page{'s' * (n != 1)}")
    for t in art["teased_by"]:
        title = f"{t['page_title']}  " if t["page_title"] else ""
        out.append(f"  {title}(position {t['position']}, first seen {t['first_seen_at']})")
        out.append(f"      {t['page_url']}")
    return "\n".join(out) + "\n"


def _markdown(art: dict[str, Any]) -> str:
    from markdownify import markdownify

    out = [f"# {art['title']}", ""]
    if art["subtitle"]:
        out += [f"*{art['subtitle']}*", ""]
    out += [f"- **{k}:** {v}" for k, v in _facts(art)]
    out.append("")
    body = markdownify(art["body_html"] or "", heading_style="ATX", bullets="-").strip()
    out += [body, ""]
    out += ["## Keep reading", ""]
    for t in art["teasers"]:
        state = f"archived, id {t['article_id']}" if t["archived"] else "not archived"
        out.append(f"{t['position']}. [{t['title']}]({t['url']}) ({state})")
    out += ["", "## Teased on", ""]
    for t in art["teased_by"]:
        out.append(
            f"- [{t['page_title'] or t['page_url']}]({t['page_url']}), position {t['position']}"
        )
    return "\n".join(out).rstrip() + "\n"


def _html(art: dict[str, Any]) -> str:
    e = html.escape
    facts = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _facts(art))
    sub = f'<p class="subtitle">{e(art["subtitle"])}</p>' if art["subtitle"] else ""
    teasers = "".join(
        f'<li><a href="{e(t["url"])}">{e(t["title"])}</a>'
        f"{'' if t['archived'] else ' (not archived)'}</li>"
        for t in art["teasers"]
    )
    teased = "".join(
        f'<li><a href="{e(t["page_url"])}">{e(t["page_title"] or t["page_url"])}</a></li>'
        for t in art["teased_by"]
    )
    # body_html is the archive's sanitised HTML (nh3 at store time): emitted as stored.
    return (
        f"<article>\n<h1>{e(art['title'])}</h1>\n{sub}\n<dl>{facts}</dl>\n"
        f'<div class="body">\n{art["body_html"] or ""}\n</div>\n'
        f"<h2>Keep reading</h2>\n<ol>{teasers}</ol>\n"
        f"<h2>Teased on</h2>\n<ul>{teased}</ul>\n</article>\n"
    )
