"""`cosmos generate` checks what it emits with the real `haproxy -c` (issue 10 / the brief)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cosmos_core.builtin.haproxy_emitter import DEFAULT_TEMPLATE
from cosmos_core.cli import app

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"


def test_a_bundle_haproxy_refuses_is_neither_written_nor_stored(haproxy_bin, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("COSMOS_HAPROXY_BIN", haproxy_bin)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    runner = CliRunner()
    store = f"sqlite://{tmp_path / 'state.db'}"
    out = tmp_path / "out" / "haproxy.cfg"
    good = runner.invoke(app, ["generate", str(SEED), "--store", store, "--output", str(out), "--check"])
    assert good.exit_code == 0, good.stderr
    written = {p: p.read_bytes() for p in out.parent.rglob("*") if p.is_file()}
    assert len(written) == 4  # haproxy.cfg and its three map files
    status = runner.invoke(app, ["status", "--json", "--store", store]).stdout

    # A template HAProxy refuses: a keyword that does not exist.
    bad = tmp_path / "bad.j2"
    bad.write_text(Path(DEFAULT_TEMPLATE).read_text().replace("    maxconn 4096\n", "    maxconn 4096\n    frobnicate on\n"))
    changed = json.loads(SEED.read_text())
    changed["candidateServices"][0]["predicate"] = "changed.example.com"
    payload = tmp_path / "changed.json"
    payload.write_text(json.dumps(changed))
    for extra in (["--output", str(out)], []):
        result = runner.invoke(app, ["--log-level", "error", "generate", str(payload), "--store", store,
                                     "--template", str(bad), *extra])
        assert result.exit_code == 1, result.stderr
        assert result.stdout == "" and result.stderr.count("\n") == 1
        assert result.stderr.startswith(f"cosmos: error: haproxy -c ({haproxy_bin}) refused the config: ")
        assert "unknown keyword 'frobnicate'" in result.stderr and "[haproxy.cfg:" in result.stderr
    assert {p: p.read_bytes() for p in out.parent.rglob("*") if p.is_file()} == written
    assert runner.invoke(app, ["status", "--json", "--store", store]).stdout == status
