"""`rsarchive history` and `rsarchive diff`: an article's revisions, what changed between them."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterator
from typing import Any

from rsarchive.archive.revisions import changes, paragraph_hunks, paragraphs
from rsarchive.cli import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_db_argument,
    database_url,
    read_errors,
    whole_number,
)
from rsarchive.cli.query import site_url

_REF_HELP = "the article: its URL, a path on the site, its id or its post id (as `show` takes)"


def register(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser(
        "history",
        help="list an article's revisions and what changed in each",
        description="List the revisions of an archived article, oldest first: when each was "
        "seen, the parser that read it, and what changed against the one before (title, "
        "subtitle, body words and characters, authors).",
    )
    history.add_argument("article", metavar="REF", help=_REF_HELP)
    add_db_argument(history)
    history.add_argument("--json", action="store_true", help="one JSON object")
    history.set_defaults(func=cmd_history)

    diff = sub.add_parser(
        "diff",
        help="show what changed in an article's text between two revisions",
        description="Show the changes between two revisions of an archived article: title, "
        "subtitle, authors, and the body as a unified diff of its paragraphs (or, with "
        "--words, the changed words marked [-removed-]{+added+}). Default: the revision before "
        "the latest against the latest.",
    )
    diff.add_argument("article", metavar="REF", help=_REF_HELP)
    add_db_argument(diff)
    diff.add_argument(
        "--from", dest="from_", metavar="N", type=whole_number, help="older revision number"
    )
    diff.add_argument(
        "--to", metavar="M", type=whole_number, help="newer revision number (default: latest)"
    )
    diff.add_argument("--words", action="store_true", help="word-level diff of the body")
    diff.add_argument(
        "--context", type=whole_number, default=1, metavar="N", help="paragraphs of context"
    )
    diff.add_argument("--json", action="store_true", help="one JSON object")
    diff.set_defaults(func=cmd_diff)


def _load(args: argparse.Namespace) -> tuple[dict[str, Any], list]:
    """The article ``args.article`` names (as ``show`` finds it) and its revisions."""
    from rsarchive.archive.queries import open_reader

    with read_errors(), open_reader(database_url(args.db)) as reader:
        return reader.history(reader.find_article_id(args.article, site_url()))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


def cmd_history(args: argparse.Namespace) -> int:
    article, versions = _load(args)
    rows = []
    for i, v in enumerate(versions):
        what = (
            [f"first version: {_count(v.words, 'word')}, {_count(len(v.authors), 'author')}"]
            if i == 0
            else changes(versions[i - 1], v) or ["same content (parser version differs)"]
        )
        rows.append((v, what))
    if args.json:
        out = {
            "article": article,
            "revisions": [{**v.as_dict(), "changes": what} for v, what in rows],
        }
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return EXIT_OK
    print(f"{article['title']}")
    removed = f"; gone from the site since {article['removed_at']}" if article["removed_at"] else ""
    print(
        f"{article['url']}  (article {article['id']}, {_count(len(versions), 'revision')}{removed})"
    )
    print()
    print(f"{'#':>3}  {'SEEN':<20}  {'PARSER':<20}  {'WORDS':>6}  CHANGES")
    for v, what in rows:
        print(
            f"{v.number:>3}  {v.captured_at:<20}  {(v.parser_version or '-'):<20}  "
            f"{v.words:>6,}  {'; '.join(what)}"
        )
    if versions and article["parser_version"] != versions[-1].parser_version:
        # A re-parse that changed other fields (section, tags, dates, teasers) but not the text
        # adds no revision: say which parser the article's row comes from now.
        print(
            f"\nnow read by {article['parser_version']} ({article['extractor']} extractor): "
            f"same text as revision {versions[-1].number}, other fields may differ "
            "(`rsarchive show`)"
        )
    return EXIT_OK


def _body_word_diff(old: list[str], new: list[str], context: int) -> Iterator[str]:
    for hunk in paragraph_hunks(old, new, context):
        yield (
            f"@@ paragraphs {hunk.old_start}-{hunk.old_end} -> {hunk.new_start}-{hunk.new_end} @@"
        )
        for op, text, ops in hunk.lines:
            if op == "~":
                yield f"~ {_word_diff_ops(ops)}"
            else:
                yield f"{' ' if op == '=' else op} {text}"


def _word_diff_ops(ops: list[tuple[str, str]]) -> str:
    marks = {"=": "{}", "-": "[-{}-]", "+": "{{+{}+}}"}
    return " ".join(marks[op].format(words) for op, words in ops)


def _in_range(name: str, n: int, article_id: int, count: int) -> None:
    if not 1 <= n <= count:
        have = f"revisions 1 to {count}" if count else "no revisions"
        raise CommandError(f"{name} {n}: article {article_id} has {have}", EXIT_USAGE)


def cmd_diff(args: argparse.Namespace) -> int:
    article, versions = _load(args)
    count = len(versions)
    if count < 2 and args.from_ is None and args.to is None:
        note = f"article {article['id']} has {_count(count, 'revision')}: nothing to compare"
        if args.json:  # the same document as a comparison, with nothing compared
            only = versions[-1].as_dict() if versions else None
            out = {"article": article, "from": None, "to": only, "changes": [], "fields": {},
                   "body_diff": [], "note": note}  # fmt: skip
            json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
            print()
            return EXIT_OK
        print(note)
        return EXIT_OK
    to = args.to if args.to is not None else count
    _in_range("--to", to, article["id"], count)  # before --from, which defaults to --to - 1
    start = args.from_ if args.from_ is not None else to - 1
    _in_range("--from", start, article["id"], count)
    old, new = versions[start - 1], versions[to - 1]
    fields = {}
    for name in ("title", "subtitle", "authors"):
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            fields[name] = {"from": before, "to": after}
    a, b = paragraphs(old.body_text), paragraphs(new.body_text)
    if args.words:
        body = list(_body_word_diff(a, b, args.context))
    else:
        body = [
            line.rstrip("\n")
            for line in difflib.unified_diff(
                a,
                b,
                f"revision {old.number} ({old.captured_at})",
                f"revision {new.number} ({new.captured_at})",
                n=args.context,
                lineterm="",
            )
        ]
    if args.json:
        out = {
            "article": article,
            "from": old.as_dict(),
            "to": new.as_dict(),
            "changes": changes(old, new),
            "fields": fields,
            "body_diff": body,
        }
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return EXIT_OK
    print(f"{article['title']}")
    print(f"{article['url']}  (article {article['id']})")
    print(
        f"revision {old.number} ({old.captured_at}, {old.parser_version or '-'}) -> "
        f"revision {new.number} ({new.captured_at}, {new.parser_version or '-'}): "
        + ("; ".join(changes(old, new)) or "same content")
    )
    for name, change in fields.items():
        before, after = change["from"], change["to"]
        if name == "authors":
            before, after = ", ".join(before), ", ".join(after)
        print(f"{name}:\n- {before or ''}\n+ {after or ''}")
    if body:
        print("body:" if args.words else "")
        for line in body:
            print(line)
    return EXIT_OK
