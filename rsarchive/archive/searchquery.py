"""The search language: what a user types into ``rsarchive search`` (and the archive's search
box), checked and turned into an FTS5 query, every problem explained in one line."""

from __future__ import annotations

import re

from .opening import BadQuery

_FTS_COLUMNS = ("title", "subtitle", "body_text")
_QUERY_TOKEN = re.compile(r'"[^"]*"\*?|"|[()]|[^\s()"]+')
_PLAIN_WORD = re.compile(r"\w+\*?")
_WORD_CHAR = re.compile(r"\w")
_COLUMN_FILTER = re.compile(r"(?P<col>{})\s*:(?P<rest>.*)".format("|".join(_FTS_COLUMNS)), re.S)
_OPERATORS = frozenset({"AND", "OR", "NOT", "NEAR"})


def fts_query(user_query: str) -> str:
    """The FTS5 query for what a user typed: FTS5 syntax passes through, and a word with
    punctuation (``U.S.-Iran``, ``Blinken-Lavrov``, ``don't``, ``http://...``) becomes the
    phrase of its parts, as the index itself split it, instead of a syntax error.

    Raises ``BadQuery`` for an unbalanced quote, a query without a word, or ``-word`` (FTS5
    excludes with ``NOT``); other syntax errors (a bare ``NOT``, unbalanced parentheses)
    surface when the query runs.
    """
    parts: list[str] = []
    for token in _QUERY_TOKEN.findall(user_query):
        if token == '"':
            raise BadQuery('unbalanced " in the search query')
        if token.startswith('"') or token in "()" or token in _OPERATORS:
            parts.append(token)
            continue
        column_filter = _COLUMN_FILTER.fullmatch(token)
        prefix = ""
        if column_filter and column_filter["rest"]:
            prefix, token = f"{column_filter['col']}:", column_filter["rest"]
        if token.startswith("-"):
            raise BadQuery(
                f"cannot search for {token!r}: to leave out a word use NOT "
                f"(iran NOT {token[1:] or 'nuclear'}); to search for it, quote it"
            )
        if not _WORD_CHAR.search(token):
            continue  # nothing the index could hold: "-", "&", "..."
        if _PLAIN_WORD.fullmatch(token):
            parts.append(prefix + token)
        else:
            star = "*" if token.endswith("*") and len(token) > 1 else ""
            word = token[:-1] if star else token
            parts.append(prefix + '"' + word.replace('"', "") + '"' + star)
    if not parts:
        raise BadQuery(f"nothing to search for in {user_query!r}")
    problem = _syntax_problem(parts)
    if problem:
        raise BadQuery(problem + lowercase_hint(user_query))
    return " ".join(parts)


_BINARY = frozenset({"AND", "OR", "NOT"})
_LOWERCASE_OPERATORS = re.compile(r"(?<![\w\"])(or|not|and)(?![\w\"])")


def _syntax_problem(parts: list[str]) -> str | None:
    """Why FTS5 would refuse these tokens, in words (None: it will take them). Parentheses must
    balance; AND, OR and NOT join two searches, so each needs one on either side."""
    depth = 0
    for i, token in enumerate(parts):
        before = parts[i - 1] if i else None
        after = parts[i + 1] if i + 1 < len(parts) else None
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0:
                return "a ) closes no ( in the search query"
        elif token in _BINARY:
            example = {"AND": "iran AND sanctions", "OR": "iran OR iraq"}.get(
                token, "iran NOT nuclear"
            )
            if before is None or before in _BINARY or before == "(" or before == "NEAR":
                return f"{token} needs a search before it ({example})"
            if after is None or after in _BINARY or after == ")":
                return f"{token} needs a search after it ({example})"
        elif token == "NEAR" and after != "(":
            return "NEAR takes its words in parentheses: NEAR(iran sanctions, 10)"
    if depth > 0:
        return "a ( is not closed in the search query"
    return None


def lowercase_hint(user_query: str) -> str:
    """A hint when the query has or/not/and in lower case: FTS5 searches those as words."""
    found = sorted(set(_LOWERCASE_OPERATORS.findall(user_query)))
    if not found:
        return ""
    words = ", ".join(found)
    return (
        f" (lowercase {words} {'is a word' if len(found) == 1 else 'are words'} to search "
        f"for; write {', '.join(w.upper() for w in found)} to combine searches)"
    )
