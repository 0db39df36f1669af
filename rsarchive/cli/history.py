"""`rsarchive history` and `rsarchive diff`: an article's revisions, what changed between them."""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from rsarchive.cli import EXIT_DB, EXIT_NOINPUT, EXIT_OK, EXIT_USAGE, CommandError, add_db_argument
from rsarchive.cli.db import existing_archive


def register(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser(
        "history",
        help="list an article's revisions and what changed in each",
        description="List the revisions of an archived article, oldest first: when each was "
        "seen, the parser that read it, and what changed against the one before (title, "
        "subtitle, body words and characters, authors).",
    )
    history.add_argument("article", metavar="URL|ID", help="the article's URL or id")
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
    diff.add_argument("article", metavar="URL|ID", help="the article's URL or id")
    add_db_argument(diff)
    diff.add_argument("--from", dest="from_", metavar="N", type=int, help="older revision number")
    diff.add_argument("--to", metavar="M", type=int, help="newer revision number (default: latest)")
    diff.add_argument("--words", action="store_true", help="word-level diff of the body")
    diff.add_argument("--context", type=int, default=1, metavar="N", help="paragraphs of context")
    diff.add_argument("--json", action="store_true", help="one JSON object")
    diff.set_defaults(func=cmd_diff)


def _load(args: argparse.Namespace) -> tuple[dict[str, Any], list]:
    from sqlalchemy.exc import SQLAlchemyError

    from rsarchive.archive import Archive
    from rsarchive.archive.revisions import article_versions, find_article

    try:
        with Archive(existing_archive(args.db)) as archive, archive.reader() as conn:
            article = find_article(conn, args.article)
            if article is None:
                raise CommandError(f"no archived article {args.article}", EXIT_NOINPUT)
            return article, article_versions(conn, article["id"])
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise CommandError(f"cannot read the archive: {reason}", EXIT_DB) from exc


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"


def _signed(n: int) -> str:
    return f"+{n:,}" if n > 0 else f"{n:,}" if n < 0 else "±0"


def changes(old: Any, new: Any) -> list[str]:
    """What differs between two versions, in words (empty: the same content)."""
    out = []
    if old.title != new.title:
        out.append("title")
    if (old.subtitle or "") != (new.subtitle or ""):
        out.append("subtitle")
    if old.body_text != new.body_text:
        out.append(
            f"body: {_signed(new.words - old.words)} words, "
            f"{_signed(len(new.body_text) - len(old.body_text))} chars"
        )
    if old.authors != new.authors:
        gone = [a for a in old.authors if a not in new.authors]
        came = [a for a in new.authors if a not in old.authors]
        moved = "" if gone or came else "order"
        out.append(
            "authors " + " ".join([*(f"-{a}" for a in gone), *(f"+{a}" for a in came)] or [moved])
        )
    return out


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
    return EXIT_OK


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n") if p.strip()]


def _word_diff(old: str, new: str) -> str:
    """``old`` -> ``new`` with removed words as ``[-...-]`` and added ones as ``{+...+}``."""
    a, b = re.findall(r"\S+", old), re.findall(r"\S+", new)
    out: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(a[i1:i2])
            continue
        if i2 > i1:
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


def _body_word_diff(old: list[str], new: list[str], context: int) -> Iterator[str]:
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        yield f"@@ paragraphs {first[1] + 1}-{last[2]} -> {first[3] + 1}-{last[4]} @@"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (f"  {p}" for p in old[i1:i2])
            elif tag == "replace" and i2 - i1 == j2 - j1:
                yield from (
                    f"~ {_word_diff(o, n)}" for o, n in zip(old[i1:i2], new[j1:j2], strict=True)
                )
            else:
                yield from (f"- {p}" for p in old[i1:i2])
                yield from (f"+ {p}" for p in new[j1:j2])


def cmd_diff(args: argparse.Namespace) -> int:
    article, versions = _load(args)
    count = len(versions)
    if count < 2 and args.from_ is None and args.to is None:
        print(f"article {article['id']} has {_count(count, 'revision')}: nothing to compare")
        return EXIT_OK
    to = args.to if args.to is not None else count
    start = args.from_ if args.from_ is not None else to - 1
    for name, n in (("--from", start), ("--to", to)):
        if count and not 1 <= n <= count:
            raise CommandError(
                f"{name} {n}: article {article['id']} has revisions 1 to {count}", EXIT_USAGE
            )
    old, new = versions[start - 1], versions[to - 1]
    fields = {}
    for name in ("title", "subtitle", "authors"):
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            fields[name] = {"from": before, "to": after}
    a, b = _paragraphs(old.body_text), _paragraphs(new.body_text)
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
