"""HTTPS settings and certificate files through the CLI (fresh-user review faults 2 and 14)."""

from __future__ import annotations

import json

import pytest

from cosmos_core.certs import file_name
from cosmos_core.cli import app
from tests.support.tls import make_ca

PAYLOAD = {"table": "t", "running": [{"serviceName": "web", "id": "c1", "ip": "10.0.0.1:80"}],
           "candidates": [{"serviceName": "web", "configMode": "host", "predicate": "web.test",
                           "containers": [{"id": "c1", "ip": "10.0.0.1:80"}]}]}


@pytest.fixture(scope="module")
def ca():
    return make_ca()


def test_a_default_cert_without_certs_dir_is_refused_before_anything_is_stored(runner, tmp_path, monkeypatch) -> None:
    (tmp_path / "p.json").write_text(json.dumps(PAYLOAD))
    monkeypatch.setenv("COSMOS_HTTPS_DEFAULT_CERT", "good")
    for output in ([], ["-o", str(tmp_path / "out" / "haproxy.cfg")]):
        result = runner.invoke(app, ["generate", "p.json", "--store", f"sqlite://{tmp_path}/s.db", "--no-check",
                                     *output])
        assert result.exit_code == 2, (result.stdout, result.stderr)
        assert result.stderr == ("cosmos: error: https_default_cert: needs certs_dir (it names a file stem there) "
                                 "(got 'good')\n")
        assert result.stdout == "" and not (tmp_path / "s.db").exists() and not (tmp_path / "out").exists()


def test_generate_writes_one_file_per_certificate_even_when_names_sanitise_alike(runner, tmp_path, ca) -> None:
    certs = tmp_path / "c2"
    certs.mkdir()
    (certs / "a b.pem").write_bytes(ca.issue(["web.test"]))
    (certs / "a_b.pem").write_bytes(ca.issue(["ec.test"]))
    (certs / "ip.pem").write_bytes(ca.issue([], cn="10.0.0.1", san=False))
    (tmp_path / "p.json").write_text(json.dumps(PAYLOAD))
    out = tmp_path / "c2out"
    result = runner.invoke(app, ["generate", "p.json", "--store", f"sqlite://{tmp_path}/s.db", "--no-check",
                                 "--certs-dir", str(certs), "--https-bind", "127.0.0.1:19444",
                                 "-o", str(out / "haproxy.cfg")])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (out / "certs").iterdir()) == sorted([f"{file_name('a b')}.pem", "a_b.pem"])
    assert (out / "crt-list").read_text() == f"certs/a_b.pem\ncerts/{file_name('a b')}.pem\n"
    assert (out / "certs" / "a_b.pem").read_bytes() == (certs / "a_b.pem").read_bytes().replace(b"\n\n", b"\n")
    listed = runner.invoke(app, ["certs", "--store", f"sqlite://{tmp_path}/s.db", "--certs-dir", str(certs),
                                 "--json"])
    rows = json.loads(listed.stdout)
    assert {r["name"]: r["names"] for r in rows["certificates"]} == {"a_b": ["ec.test"],
                                                                     file_name("a b"): ["web.test"]}
    assert rows["skipped"] == [{"file": str(certs / "ip.pem"),
                                "reason": "names '10.0.0.1' is an IP address, not a DNS host name "
                                          "(SNI carries host names only)"}]
