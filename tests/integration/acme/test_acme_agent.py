"""The agent wiring: after a pass, the acme resolver issues for the claimed host on its own thread;
HAProxy serves the certificate without a reload, and the next bundle carries it."""

from __future__ import annotations

import json
import ssl
import subprocess
import time

from cosmos_core import pipeline
from cosmos_core.agent import Agent
from cosmos_core.certs import write_files
from cosmos_core.runtime import Runtime
from cosmos_core.settings import load
from cosmos_core.tls_agent import attach, wanted_hosts
from tests.support.haproxy import Backend, HAProxyProcess, free_port, localize
from tests.support.tls import https_get, make_ca


def test_watch_wiring_issues_for_claimed_hosts_and_bundles_the_certificate(haproxy_bin, tmp_path, pebble) -> None:
    backend = Backend("web")
    brought = tmp_path / "brought"
    brought.mkdir()
    (brought / "own.pem").write_bytes(make_ca().issue(["own.example.test"]))
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"table": "default", "candidates": [
        {"serviceName": "web", "configMode": "host", "predicate": "web.example.test",
         "containers": [{"id": "web", "ip": f"127.0.0.1:{backend.port}"}]},
        {"serviceName": "own", "configMode": "host", "predicate": "own.example.test",
         "containers": [{"id": "own", "ip": f"127.0.0.1:{backend.port}"}]},
        {"serviceName": "plain", "configMode": "host", "predicate": "plain.example.test", "https": "off",
         "containers": [{"id": "plain", "ip": f"127.0.0.1:{backend.port}"}]},
    ]}))
    https_port, sock = free_port(), tmp_path / "haproxy.sock"
    settings = load({
        "store": f"sqlite://{tmp_path}/state.db", "payload": str(payload), "events": "payload", "reloader": "none",
        "bind": f"127.0.0.1:{pebble.http_port}", "https_bind": f"127.0.0.1:{https_port}",
        "certs_dir": str(brought), "acme_directory": pebble.directory, "acme_email": "ops@example.test",
        "acme_ca_bundle": pebble.api_ca, "haproxy_socket": str(sock),
    }, environ={})
    runtime = Runtime(settings)
    snapshot = next(iter(runtime.event_source().snapshots()))
    out = tmp_path / "bundle" / "haproxy.cfg"
    bundle = pipeline.generate(runtime, snapshot).bundle
    write_files(out.parent, {**runtime.emitter.files(), **bundle.aux})  # certificates and routing maps
    out.write_text(localize(bundle.config, sock))
    proc = HAProxyProcess(haproxy_bin, out, [pebble.http_port, https_port])
    try:
        agent = Agent(runtime, runtime.event_source(), runtime.reloader)
        assert attach(runtime, agent)
        assert agent.step(snapshot)
        root = pebble.root_pem()
        deadline = time.monotonic() + 60
        while True:
            try:
                status = https_get(https_port, "web.example.test", cadata=root)[0]
                break
            except (ssl.SSLError, OSError):
                assert time.monotonic() < deadline, pebble.log()
                time.sleep(0.1)
        assert status == 200 and proc.proc.poll() is None
        # The brought certificate serves its own name; ACME never issued for it or for https=off.
        assert https_get(https_port, "own.example.test", cadata=make_ca_pem(brought))[0] == 200
        assert wanted_hosts(runtime.store.load("default").services.values(),
                            list(runtime.emitter.tls.certificates)) == []
        assert sorted(c.name for c in runtime.certificate_resolver.certificates()) == ["web.example.test"]
        # cosmos certs lists both, with their source and the services using them.
        from typer.testing import CliRunner

        from cosmos_core.cli import app

        env = {"COSMOS_ACME_DIRECTORY": pebble.directory, "COSMOS_ACME_CA_BUNDLE": pebble.api_ca}
        listed = CliRunner().invoke(app, ["certs", "--json", "--store", settings.store, "--certs-dir", str(brought)],
                                    env=env)
        assert listed.exit_code == 0, listed.stderr
        rows = {r["name"]: r for r in json.loads(listed.stdout)["certificates"]}
        assert rows["web.example.test"]["source"] == f"acme:{pebble.directory}"
        assert rows["web.example.test"]["services"] == ["default/web"]
        assert "Pebble" in rows["web.example.test"]["issuer"]
        assert rows["own"]["services"] == ["default/own"] and rows["own"]["source"] == f"dir:{brought}"
        # The next bundle carries the issued certificate: a restart starts from the truth.
        files = runtime.emitter.files()
        assert files["crt-list"] == b"certs/own.pem\ncerts/web.example.test.pem\n"
        write_files(out.parent, files)
        check = subprocess.run([haproxy_bin, "-c", "-f", str(out)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        proc.stop()
        runtime.close()
        backend.close()


def make_ca_pem(directory) -> bytes:
    """The CA certificate inside the brought PEM (its second block)."""
    data = (directory / "own.pem").read_bytes()
    start = data.index(b"-----BEGIN CERTIFICATE-----", 10)
    return data[start:data.index(b"-----END CERTIFICATE-----", start) + 25] + b"\n"
