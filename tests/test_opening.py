"""How commands open the archive: read-only, one probe, one exit code for "not an archive".

Every reading command (the query commands, `history`, `diff`, `db current`, `db check`, the
check `serve` runs) opens the archive through ``opening.open_archive``: a read-only engine that
never creates a table or changes the file's journal mode, and never waits for the write lock.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT

from rsarchive.archive import check
from rsarchive.cli import database_url, main
from rsarchive.cli.serve import check_archive as serve_check
from rsarchive.cli.serve import sqlite_path

BLINKEN = "https://responsiblestatecraft.org/2021/05/19/blinken-lavrov-iceland/"
BLINKEN_POST_ID = "2652879530"

# Every command that only reads, with arguments that succeed on the demo archive.
READERS = (
    ["list"],
    ["search", "iran"],
    ["show", "1"],
    ["stats"],
    ["authors"],
    ["export"],
    ["history", "1"],
    ["diff", "1"],
    ["db", "current"],
    ["db", "check"],
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    proc = subprocess.run(
        [sys.executable, "-m", "rsarchive.cli", "demo", "--db", str(db)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return db


@pytest.fixture
def archive(demo, tmp_path) -> Path:
    """A private copy of the demo archive, closed cleanly (no -wal/-shm beside it)."""
    db = tmp_path / "archive.db"
    src, dst = sqlite3.connect(demo), sqlite3.connect(db)
    src.backup(dst)
    dst.close()
    src.close()
    return db


@pytest.fixture
def run(capsys, monkeypatch):
    monkeypatch.delenv("RSARCHIVE_DATABASE_URL", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def journal_mode(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def not_archives(where: Path) -> dict[str, Path]:
    """A text file, an empty file, and another program's SQLite database."""
    text = where / "notes.txt"
    text.write_text("not a database\n" * 100)
    empty = where / "empty.db"
    empty.touch()
    other = where / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO things (name) VALUES ('mine')")
    conn.close()
    return {"text": text, "empty": empty, "other": other}


# -- reading never changes the file ------------------------------------------------------------


def test_reading_commands_leave_a_rollback_journal_database_exactly_as_it_was(archive, run):
    with sqlite3.connect(archive) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    conn.close()
    before = archive.read_bytes()
    for argv in READERS:
        code, out, err = run(*argv, "--db", str(archive))
        assert code == 0, (argv, err)
        assert out, argv
    assert serve_check(archive)  # what `rsarchive serve` checks before serving
    assert journal_mode(archive) == "delete"
    assert archive.read_bytes() == before
    assert sorted(p.name for p in archive.parent.iterdir()) == ["archive.db"]


@pytest.mark.parametrize("kind", ["text", "empty", "other"])
@pytest.mark.parametrize(
    "argv",
    [["list"], ["history", "1"], ["diff", "1"], ["db", "current"], ["db", "check"], ["reparse"]],
    ids=" ".join,
)
def test_what_is_not_an_archive_exits_78_untouched_for_every_command(tmp_path, run, argv, kind):
    db = not_archives(tmp_path)[kind]
    before = db.read_bytes()
    code, _out, err = run(*argv, "--db", str(db))
    assert code == 78, err
    assert f"{db} is not an rsarchive archive" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert db.read_bytes() == before  # no archive schema created in it, no WAL switch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "notes.txt", "other.db"]


def test_db_upgrade_creates_an_archive_in_an_empty_database_but_not_beside_other_tables(
    tmp_path, run
):
    dbs = not_archives(tmp_path)
    for kind in ("text", "other"):
        before = dbs[kind].read_bytes()
        code, _, err = run("db", "upgrade", "--db", str(dbs[kind]))
        assert code == 78 and "is not an rsarchive archive" in err, err
        assert dbs[kind].read_bytes() == before
    code, out, err = run("db", "upgrade", "--db", str(dbs["empty"]))
    assert code == 0, err
    assert out.startswith("created a new archive at schema")
    assert run("list", "--db", str(dbs["empty"]))[0] == 0


# -- a running writer --------------------------------------------------------------------------


def test_readers_see_committed_pages_of_a_running_writer_and_never_wait_for_it(archive, run):
    writer = sqlite3.connect(archive, isolation_level=None, check_same_thread=False)
    try:
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        writer.execute("UPDATE articles SET title = 'Committed title' WHERE id = 1")  # in -wal
        writer.execute("BEGIN IMMEDIATE")  # a crawl in the middle of storing a page
        writer.execute("UPDATE articles SET title = 'Not yet committed' WHERE id = 2")
        for argv in (["list"], ["show", "1"], ["history", "1"], ["db", "current"]):
            code, out, err = run(*argv, "--db", str(archive))
            assert code == 0, (argv, err)
        assert "Committed title" in run("show", "1", "--db", str(archive))[1]
        assert "Not yet committed" not in run("list", "--db", str(archive))[1]
        # db check reads on the read-only connection; only FTS5's own check waits for the
        # page to be stored.
        threading.Timer(0.5, writer.execute, ["COMMIT"]).start()
        code, out, err = run("db", "check", "--db", str(archive))
        assert code == 0, out + err
    finally:
        writer.close()
    assert journal_mode(archive) == "wal"


def test_db_check_reads_everything_else_while_a_writer_holds_the_lock(archive, run, monkeypatch):
    monkeypatch.setattr(check, "FTS_CHECK_BUSY_TIMEOUT", 0.2)
    writer = sqlite3.connect(archive, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        code, out, err = run("db", "check", "--db", str(archive))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert code == 65, err
    assert out.splitlines() == [
        "PROBLEM full-text index not checked (database is locked): "
        "FTS5 checks it in a write transaction",
        f"{archive}: 1 problem(s)",
    ]


def test_a_read_only_wal_archive_without_side_files_opens(archive, run):
    assert journal_mode(archive) == "wal"
    assert not Path(f"{archive}-wal").exists() and not Path(f"{archive}-shm").exists()
    code, _out, err = run("list", "--db", str(archive))
    assert code == 0, err
    assert journal_mode(archive) == "wal"


# -- URLs and drivers --------------------------------------------------------------------------


def test_a_missing_driver_is_one_line_78_and_passwords_are_never_printed(run):
    url = "mysql://reader:s3cret@db.invalid/rs"
    for argv in (
        ["list"],
        ["history", "1"],
        ["diff", "1"],
        ["db", "current"],
        ["db", "check"],
        ["db", "upgrade"],
    ):
        code, out, err = run(*argv, "--db", url)
        assert code == 78, (argv, err)
        assert "s3cret" not in out + err
        assert "mysql://reader:***@db.invalid/rs" in err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_a_path_with_percent_signs_is_that_file(archive, tmp_path, run, monkeypatch):
    odd = tmp_path / "c%20d.db"
    shutil.copy(archive, odd)
    monkeypatch.chdir(tmp_path)
    assert sqlite_path(database_url("c%20d.db")) == odd
    code, _out, err = run("list", "--db", "c%20d.db")
    assert code == 0, err
    code, _out, err = run("db", "current", "--db", "c%20d.db")
    assert code == 0, err
    assert not (tmp_path / "c d.db").exists()


# -- history and diff find articles as show does --------------------------------------------


def test_history_and_diff_take_what_show_takes(archive, run):
    by_id = run("history", "6", "--db", str(archive))
    assert by_id[0] == 0 and "blinken-lavrov-iceland" in by_id[1]
    for ref in (BLINKEN, BLINKEN_POST_ID, "/2021/05/19/blinken-lavrov-iceland/"):
        assert run("show", ref, "--db", str(archive))[0] == 0
        assert run("history", ref, "--db", str(archive)) == by_id
        code, out, _ = run("diff", ref, "--db", str(archive))
        assert (code, out) == (0, "article 6 has 1 revision: nothing to compare\n")
    code, _, err = run("history", "/no-such-post/", "--db", str(archive))
    assert code == 66
    assert err == (
        "rsarchive history: no archived article at https://responsiblestatecraft.org/no-such-post\n"
    )


def test_diff_checks_to_before_deriving_from(archive, run):
    code, _, err = run("diff", "6", "--to", "0", "--db", str(archive))
    assert (code, err) == (64, "rsarchive diff: --to 0: article 6 has revisions 1 to 1\n")
    code, _, err = run("diff", "6", "--from", "0", "--to", "1", "--db", str(archive))
    assert (code, err) == (64, "rsarchive diff: --from 0: article 6 has revisions 1 to 1\n")


def test_a_search_without_matches_says_so_on_stderr_in_both_forms(archive, run):
    for extra in ([], ["--json"]):
        code, out, err = run("search", "zzyzx", *extra, "--db", str(archive))
        assert (code, out, err) == (0, "", "no matches\n")
