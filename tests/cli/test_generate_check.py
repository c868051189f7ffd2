"""`cosmos generate` runs `haproxy -c` on the bundle it emits (a stand-in binary here; the real one in
tests/integration/test_generate_check.py)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cosmos_core.cli import app

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"


def fake_haproxy(tmp_path: Path, exit_code: int = 0, says: str = "") -> tuple[Path, Path]:
    """A stand-in ``haproxy`` that records its argv and the staged files it was given, then exits ``exit_code``."""
    log = tmp_path / "haproxy-calls.jsonl"
    script = tmp_path / "bin" / "haproxy"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"""#!{os.sys.executable}
import json, os, sys
main = sys.argv[sys.argv.index("-f") + 1]
base = os.path.dirname(main)
files = sorted(os.path.relpath(os.path.join(d, f), base) for d, _, fs in os.walk(base) for f in fs)
with open({str(log)!r}, "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "files": files}}) + "\\n")
if {says!r}:
    print({says!r})
sys.exit({exit_code})
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def stored(runner, store: str) -> dict:
    result = runner.invoke(app, ["status", "--json", "--store", store])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["tables"]


def test_the_bundle_with_its_map_files_is_checked_before_it_is_written(runner, tmp_path, monkeypatch) -> None:
    binary, log = fake_haproxy(tmp_path)
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", str(binary))
    out = tmp_path / "out" / "haproxy.cfg"
    result = runner.invoke(app, ["generate", str(SEED), "--output", str(out)])
    assert result.exit_code == 0, result.stderr
    [call] = calls(log)
    assert call["argv"][0] == "-c" and call["argv"][-1].endswith("/haproxy.cfg")
    assert call["files"] == sorted(["haproxy.cfg", "maps/hosts.map", "maps/paths.map", "maps/wildcards.map"])
    assert out.exists() and (out.parent / "maps" / "hosts.map").exists()
    # stdout: the one-file form is checked too
    assert runner.invoke(app, ["generate", str(SEED)]).exit_code == 0
    assert calls(log)[-1]["files"] == ["haproxy.cfg"]


def test_a_refused_bundle_writes_and_stores_nothing_exit_1(runner, tmp_path, monkeypatch) -> None:
    store = f"sqlite://{tmp_path / 'state.db'}"
    assert runner.invoke(app, ["generate", str(SEED), "--store", store, "--no-check"]).exit_code == 0
    before = stored(runner, store)
    binary, log = fake_haproxy(tmp_path, 1, "[ALERT]    (7) : config : parsing [/tmp/cosmos-check-abc/haproxy.cfg:9] : "
                                            "unknown keyword 'frobnicate' in 'global' section")
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", str(binary))
    changed = json.loads(SEED.read_text())
    changed["candidateServices"][0]["predicate"] = "changed.example.com"
    payload = tmp_path / "changed.json"
    payload.write_text(json.dumps(changed))
    out = tmp_path / "out" / "haproxy.cfg"
    for extra in (["--output", str(out)], []):
        result = runner.invoke(app, ["generate", str(payload), "--store", store, *extra])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == ""
        errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # the rest: JSON logs
        assert errors == ["cosmos: error: haproxy -c (" + str(binary) + ") refused the config: config : parsing "
                          "[haproxy.cfg:9] : unknown keyword 'frobnicate' in 'global' section; nothing was stored "
                          "or written"]
    assert not out.parent.exists()
    assert stored(runner, store) == before
    assert len(calls(log)) == 2


def test_without_haproxy_it_warns_once_and_writes_unless_check_is_asked(runner, tmp_path, monkeypatch) -> None:
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # the default haproxy_bin, 'haproxy', is not found
    out = tmp_path / "out" / "haproxy.cfg"
    result = runner.invoke(app, ["--log-level", "error", "generate", str(SEED), "--output", str(out)])
    assert result.exit_code == 0 and out.exists()
    assert result.stderr.count("cosmos: warning: haproxy_bin") == 1 and "not found" in result.stderr
    assert result.stderr.count("\n") == 1
    quiet = runner.invoke(app, ["--log-level", "error", "generate", str(SEED), "--no-check"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and "frontend http" in quiet.stdout
    asked = runner.invoke(app, ["--log-level", "error", "generate", str(SEED), "--check",
                                "--store", f"sqlite://{tmp_path / 'other.db'}"])
    assert asked.exit_code == 1 and asked.stdout == ""
    assert asked.stderr.startswith("cosmos: error: --check: haproxy_bin ") and asked.stderr.count("\n") == 1
    assert not (tmp_path / "other.db").exists()  # refused before the store is opened


def test_no_check_checks_nothing(runner, tmp_path, monkeypatch) -> None:
    binary, log = fake_haproxy(tmp_path, 1, "refused")
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", str(binary))
    assert runner.invoke(app, ["generate", str(SEED), "--no-check"]).exit_code == 0
    assert calls(log) == []


BAD_BINARIES = {"a file that is not executable": "/etc/passwd", "a directory": "/tmp", "a missing path": "no/such/haproxy",
                "a missing command": "no-such-haproxy-command"}


@pytest.mark.parametrize("what", BAD_BINARIES)
@pytest.mark.parametrize("check", [[], ["--check"]])
def test_an_explicit_haproxy_bin_that_cannot_run_is_bad_input(runner, tmp_path, monkeypatch, what, check) -> None:
    binary = BAD_BINARIES[what]
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", binary)
    store = tmp_path / "new" / "s.db"
    out = tmp_path / "out" / "haproxy.cfg"
    result = runner.invoke(app, ["--log-level", "error", "generate", str(SEED), "--store", f"sqlite://{store}",
                                 "-o", str(out), *check])
    assert result.exit_code == 2, result.stderr
    assert result.stderr == (f"cosmos: error: haproxy_bin: is not an executable file (nor a command on PATH); "
                             f"nothing was stored or written (got {binary!r})\n")
    assert not store.parent.exists() and not out.parent.exists()
    assert runner.invoke(app, ["generate", str(SEED), "--no-check"]).exit_code == 0  # --no-check: not used


def test_a_hanging_haproxy_bin_is_killed_with_its_children_exit_1(runner, tmp_path, monkeypatch) -> None:
    from cosmos_core import quarantine

    started = tmp_path / "child.pid"
    script = tmp_path / "bin" / "haproxy"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\nsleep 600 &\necho $! > {started}\nwait\n")
    script.chmod(0o755)
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", str(script))
    monkeypatch.setattr(quarantine, "CHECK_TIMEOUT", 0.5)
    monkeypatch.setattr(quarantine.haproxy_check, "__defaults__", (0.5,))
    store = tmp_path / "s.db"
    result = runner.invoke(app, ["--log-level", "error", "generate", str(SEED), "--store", f"sqlite://{store}"])
    assert result.exit_code == 1, result.stderr
    assert result.stderr == (f"cosmos: error: haproxy -c: {str(script)!r} did not finish within 0.5 s (killed); "
                             "nothing was stored or written\n")
    assert not store.exists() and result.stdout == ""
    child = int(started.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


@pytest.mark.parametrize("where", ["maps is a file", "output is a directory", "haproxy.cfg is a directory"])
def test_an_output_path_that_cannot_be_written_is_refused_before_anything_is_stored(runner, tmp_path, where) -> None:
    out = tmp_path / "ao" / "haproxy.cfg"
    out.parent.mkdir()
    if where == "maps is a file":
        (out.parent / "maps").write_text("")
    elif where == "output is a directory":
        out = out.parent
    else:
        out.mkdir()
    store = tmp_path / "s.db"
    result = runner.invoke(app, ["--log-level", "error", "generate", str(SEED), "--no-check", "--store",
                                 f"sqlite://{store}", "-o", str(out)])
    assert result.exit_code == 1, result.stderr  # as any --output that cannot be written
    assert result.stderr.startswith(f"cosmos: error: --output {out}: cannot write (") and result.stderr.count("\n") == 1
    assert result.stderr.endswith("; nothing was stored or written\n")
    assert not store.exists()
    assert sorted(p.name for p in (tmp_path / "ao").rglob("*")) == sorted(
        {"maps is a file": ["maps"], "output is a directory": [], "haproxy.cfg is a directory": ["haproxy.cfg"]}[where])


def test_a_refused_config_leaves_no_new_store_file(runner, tmp_path, monkeypatch) -> None:
    binary, _ = fake_haproxy(tmp_path, 1, "[ALERT] (7) : unknown keyword 'frobnicate'")
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", str(binary))
    store = tmp_path / "new" / "r.db"
    result = runner.invoke(app, ["--log-level", "error", "generate", str(SEED), "--store", f"sqlite://{store}"])
    assert result.exit_code == 1 and "nothing was stored or written" in result.stderr
    assert not store.parent.exists()


def test_watch_refuses_an_explicit_haproxy_bin_it_would_check_with_before_it_stores(runner, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", "/etc/passwd")
    store = tmp_path / "w.db"
    result = runner.invoke(app, ["--log-level", "error", "watch", "--once", "--events", "payload", "--payload",
                                 str(SEED), "--reloader", "none", "--store", f"sqlite://{store}", "--host-id", "h1"])
    assert result.exit_code == 2, result.stderr
    assert result.stderr == ("cosmos: error: haproxy_bin: is not an executable file (nor a command on PATH) "
                             "(got '/etc/passwd')\n")
    assert not store.exists()
    binary, _ = fake_haproxy(tmp_path)
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", str(binary))
    ok = runner.invoke(app, ["--log-level", "error", "watch", "--once", "--events", "payload", "--payload",
                             str(SEED), "--reloader", "none", "--store", f"sqlite://{store}", "--host-id", "h1"])
    assert ok.exit_code == 0, ok.stderr
    assert store.exists()  # a binary that runs is accepted (the agent checks with it when a reload is refused)
