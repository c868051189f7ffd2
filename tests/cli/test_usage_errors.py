"""Usage errors (unknown option or command, bad or missing value): one stderr line, exit 2 (fresh-user review)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cosmos_core.cli import app


@pytest.mark.parametrize("args, command, needles", [
    (["generate", "--frob"], "cosmos generate", ["No such option: --frob"]),
    (["generate", "--frob=1"], "cosmos generate", ["No such option: --frob"]),
    (["--frob", "status"], "cosmos", ["No such option: --frob"]),
    (["status", "--table"], "cosmos status", ["'--table' requires an argument"]),
    (["fleet", "status", "--lease", "soon"], "cosmos fleet status", ["'--lease'", "'soon'"]),
    (["fleet", "status", "--lease=soon"], "cosmos fleet status", ["'--lease'", "'soon'"]),
    (["serve", "--port", "http"], "cosmos serve", ["'--port'", "'http'"]),
    (["frob"], "cosmos", ["No such command 'frob'"]),
    (["fleet", "frob"], "cosmos fleet", ["No such command 'frob'"]),
    (["generate", "a.json", "b.json"], "cosmos generate", ["unexpected extra argument", "b.json"]),
    (["watch", "--debounce", "1"], "cosmos watch", ["No such option: --debounce"]),
])
def test_a_usage_error_is_one_line_naming_the_option_and_value(runner, args, command, needles) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    line = result.stderr.rstrip("\n")
    assert line.startswith(f"cosmos: error: {command}: "), line
    assert line.endswith(f"(see '{command} --help')")
    for needle in needles:
        assert needle in line, (needle, line)
    assert not any(ch in line for ch in "╭╰│")
    assert result.stdout == ""


def test_help_and_no_arguments_still_show_the_help(runner) -> None:
    for args in (["--help"], ["fleet", "--help"], ["status", "--help"], ["fleet"]):
        result = runner.invoke(app, args)
        assert "Usage: cosmos" in result.stdout, args
        assert "cosmos: error" not in result.stdout + result.stderr


def test_the_console_script_prints_one_line_too(tmp_path) -> None:
    script = Path(sys.executable).with_name("cosmos")
    out = subprocess.run([str(script), "generate", "--frobnicate"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr == "cosmos: error: cosmos generate: No such option: --frobnicate (see 'cosmos generate --help')\n"


def test_a_bad_value_from_the_environment_names_the_variable_and_value(runner, monkeypatch) -> None:
    monkeypatch.setenv("COSMOS_DEBUG", "maybe")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "'--debug'" in result.stderr and "COSMOS_DEBUG" in result.stderr and "(got 'maybe')" in result.stderr
