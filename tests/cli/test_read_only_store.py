"""Commands that only read the store never create it (fresh-user review: a mistyped path made an empty file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmos_core.cli import app

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"

READ_ONLY = [["status"], ["status", "--json"], ["fleet", "status"], ["fleet", "forget", "h1"]]


@pytest.mark.parametrize("command", READ_ONLY)
@pytest.mark.parametrize("where", ["typo.db", "no/such/dir/typo.db"])
def test_a_read_only_command_on_a_missing_sqlite_file_creates_nothing(runner, tmp_path, command, where) -> None:
    path = tmp_path / where
    url = f"sqlite://{path}"
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(app, ["--log-level", "error", *command, "--store", url])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"cosmos: error: store {url}: no such SQLite file"), result.stderr
    assert not path.exists() and sorted(tmp_path.rglob("*")) == before  # no file, no directory, no -wal


def test_certs_on_a_missing_store_warns_lists_the_directory_and_creates_nothing(runner, tmp_path) -> None:
    path = tmp_path / "no" / "typo.db"
    result = runner.invoke(app, ["--log-level", "error", "certs", "--store", f"sqlite://{path}",
                                 "--certs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(f"cosmos: warning: store sqlite://{path}: no such SQLite file")
    assert result.stderr.count("\n") == 1 and "--certs-dir only" in result.stderr
    assert not path.parent.exists()


def test_a_relative_path_is_named_as_given(runner, tmp_path) -> None:
    result = runner.invoke(app, ["status", "--store", "sqlite://stat.db"])
    assert result.exit_code == 2 and "store sqlite://stat.db: no such SQLite file" in result.stderr
    assert not (tmp_path / "stat.db").exists()


def test_the_default_store_not_yet_made_reads_as_empty_and_is_not_created(runner, tmp_path) -> None:
    default = tmp_path / "state" / "cosmos" / "cosmos.db"  # the runner's XDG_STATE_HOME
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0 and "(no services stored)" in result.stdout
    assert not default.exists() and not default.parent.exists()
    # generate creates it; status then reads it.
    assert runner.invoke(app, ["generate", str(SEED)]).exit_code == 0
    assert default.exists()
    assert "table astro: 2 service(s)" in runner.invoke(app, ["status"]).stdout


def test_an_existing_file_is_read_by_every_read_only_command(runner, tmp_path) -> None:
    url = f"sqlite://{tmp_path / 'here.db'}"
    assert runner.invoke(app, ["generate", str(SEED), "--store", url]).exit_code == 0
    assert "table astro" in runner.invoke(app, ["status", "--store", url]).stdout
    assert runner.invoke(app, ["--log-level", "error", "certs", "--store", url]).exit_code == 0
    assert runner.invoke(app, ["--log-level", "error", "fleet", "status", "--store", url, "--table", "astro"]).exit_code == 0


READS = [["status"], ["status", "--json"], ["fleet", "status"], ["certs"]]


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(path.parent.iterdir()) if p.is_file()}


@pytest.mark.parametrize("command", READS)
def test_a_read_only_command_writes_nothing_to_an_empty_file(runner, tmp_path, command) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    result = runner.invoke(app, ["--log-level", "error", *command, "--store", f"sqlite://{path}"])
    assert result.exit_code == 0, result.stderr
    assert path.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


@pytest.mark.parametrize("command", READS)
def test_a_read_only_command_does_not_migrate_an_older_store(runner, tmp_path, command) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    assert runner.invoke(app, ["generate", str(SEED), "--store", f"sqlite://{path}", "--no-check"]).exit_code == 0
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.executescript("""
        DROP TABLE hosts;
        CREATE TABLE hosts (tbl TEXT NOT NULL, host TEXT NOT NULL, beats INTEGER NOT NULL, address TEXT,
                            PRIMARY KEY (tbl, host)) WITHOUT ROWID;
        INSERT INTO hosts VALUES ('astro', 'h1', 3, NULL);
        ALTER TABLE containers DROP COLUMN host_id;
    """)
    conn.close()
    before = _snapshot(path)
    result = runner.invoke(app, ["--log-level", "error", *command, "--store", f"sqlite://{path}", *(
        ["--table", "astro"] if command[0] == "fleet" else [])])
    assert result.exit_code == 0, result.stderr
    assert _snapshot(path) == before  # no ALTER TABLE, no schema, no -wal left behind
    if command == ["status"]:
        assert "table astro: 2 service(s)" in result.stdout
    if command[0] == "fleet":
        assert "h1" in result.stdout


@pytest.mark.parametrize("command", [["status"], ["fleet", "status"], ["fleet", "forget", "h1"], ["generate", str(SEED)]])
@pytest.mark.parametrize("kind", ["directory", "text file"])
def test_a_path_that_is_not_a_sqlite_file_is_bad_input_for_every_command(runner, tmp_path, command, kind) -> None:
    path = tmp_path / "store.db"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_text("not a database\n")
    before = sorted(tmp_path.rglob("*"))
    result = runner.invoke(app, ["--log-level", "error", *command, "--store", f"sqlite://{path}", *(
        ["--no-check"] if command[0] == "generate" else [])])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"cosmos: error: store sqlite://{path}: ")
    assert ("is a directory" if kind == "directory" else "is not a SQLite database") in result.stderr
    assert sorted(tmp_path.rglob("*")) == before
    if kind == "text file":
        assert path.read_text() == "not a database\n"


def test_certs_on_a_path_that_is_not_a_sqlite_file_warns_and_lists_the_directory(runner, tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n")
    (tmp_path / "certs").mkdir()
    result = runner.invoke(app, ["--log-level", "error", "certs", "--store", f"sqlite://{path}",
                                 "--certs-dir", str(tmp_path / "certs")])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (f"cosmos: warning: store sqlite://{path}: is not a SQLite database; check the path "
                             "(nothing was stored or written); listing the certificates of --certs-dir only\n")
    assert path.read_text() == "not a database\n"


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["fleet", "status"]])
def test_a_table_name_no_store_can_hold_is_bad_input_for_every_reader(runner, tmp_path, command) -> None:
    """Fresh-user review: ``status --table 'bad name'`` printed "0 service(s)" and exit 0, while
    ``generate`` and ``fleet status`` refuse that name."""
    url = f"sqlite://{tmp_path / 'here.db'}"
    assert runner.invoke(app, ["generate", "--no-check", str(SEED), "--store", url]).exit_code == 0
    result = runner.invoke(app, [*command, "--store", url, "--table", "bad name"])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cosmos: error: table: ")
    assert "'bad name'" in result.stderr and result.stdout == ""
