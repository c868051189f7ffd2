"""The exec session's framing, run by a real local ``sh`` (values survive byte for byte, the exit code comes back)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cosmos_reload_docker_exec.session import SessionError, session_script

pytestmark = pytest.mark.skipif(shutil.which("base64") is None, reason="no base64 on this host")


def run_in_sh(*jobs: tuple[list[str], dict[str, str]]) -> str:
    text = "".join(session_script(argv, env, f"tok{i}") for i, (argv, env) in enumerate(jobs))
    return subprocess.run(["sh"], input=text, capture_output=True, text=True, timeout=30, check=True).stdout


def test_scripts_run_one_after_another_with_their_environment_and_exit_codes() -> None:
    tricky = "line one\n  '$HOME' \"q\" `x` ; é\n\n"
    out = run_in_sh((["sh", "-c", 'printf "%s" "$A"; exit 3'], {"A": tricky}),
                    (["sh", "-c", 'echo "[$B]"; read line; echo "read:$?"'], {"B": "2"}))
    first, rest = out.split("\ntok0 ", 1)
    assert first == tricky  # trailing newlines kept
    code, second = rest.split("\n", 1)
    assert code == "3"
    assert second == "[2]\nread:1\n\ntok1 0\n"  # stdin is /dev/null: the script cannot eat the session's input


def test_only_sh_c_and_plain_names() -> None:
    with pytest.raises(SessionError):
        session_script(["cat", "/etc/passwd"], {}, "t")
    with pytest.raises(SessionError):
        session_script(["sh", "-c", "true"], {"A;rm": "x"}, "t")
