"""What the archive survives in its process and storage: kills at any point, signals, overlapping
runs, a locked, full, read-only or corrupt database, hostile paths and numbers; each run as a
user runs it (real `rsarchive` subprocesses against the fixture site on 127.0.0.1)."""

from __future__ import annotations

import argparse

import pytest

from rsarchive.cli import build_parser, main

HUGE = "99999999999999999999"


# -- numbers ------------------------------------------------------------------------------------


def _integer_options() -> list[tuple[list[str], str]]:
    """(the sub-command words and its required arguments, option) for every option taking an
    integer, of every command (nested ones too, such as `db ...`)."""
    found: list[tuple[list[str], str]] = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        required = [
            "x" for a in parser._actions if not a.option_strings and a.nargs is None and a.dest
        ]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*words, name])
            elif action.option_strings and callable(action.type):
                try:
                    is_int = isinstance(action.type("5"), int)
                except (argparse.ArgumentTypeError, ValueError, TypeError):
                    is_int = False
                if is_int:
                    found.append(([*words, *required], action.option_strings[0]))

    walk(build_parser(), [])
    return found


def test_every_integer_option_is_checked():
    options = _integer_options()
    names = {(words[0], option) for words, option in options}
    assert {("search", "--limit"), ("list", "--offset"), ("stats", "--runs")} <= names
    assert ("diff", "--context") in names


@pytest.mark.parametrize(("words", "option"), _integer_options())
@pytest.mark.parametrize("value", [HUGE, "-1", "1e3", ""])
def test_an_integer_option_out_of_range_is_a_usage_error(words, option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, option, value, "--db", "/nonexistent/never.db"])
    assert exit_.value.code == 64
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


def test_search_with_a_huge_limit_exits_64_in_one_line(tmp_path):
    from conftest import rsarchive

    proc = rsarchive("search", "Blinken", "--limit", HUGE, "--db", str(tmp_path / "a.db"))
    assert proc.returncode == 64
    assert proc.stderr.splitlines()[-1] == (
        f"rsarchive search: error: argument --limit: too large (at most 2147483647): {HUGE}"
    )
    assert "Traceback" not in proc.stderr
