"""ACME end to end: pebble issues, HAProxy answers the challenge from its map and serves the
certificate installed through the runtime API, with no reload."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time

import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from cosmos_acme.haproxy import Installer
from cosmos_acme.issuer import Issuer
from cosmos_acme.manager import CertificateManager
from cosmos_acme.storage import DirStorage, SQLiteStorage
from cosmos_core.cli import app
from cosmos_core.haproxy.runtime_api import RuntimeAPI, UnixSocket
from tests.support.haproxy import Backend, HAProxyProcess, free_port, localize
from tests.support.tls import https_get


@pytest.fixture
def backend():
    server = Backend("web")
    yield server
    server.close()


def start_haproxy(haproxy_bin, tmp_path, name, pebble, backend, http_port):
    """Generate a config with ACME on (no certificate yet) and run it; returns (proc, https port, socket)."""
    payload = tmp_path / f"{name}.json"
    payload.write_text(json.dumps({"table": "acme", "candidates": [
        {"serviceName": "web", "configMode": "host", "predicate": "web.example.test",
         "containers": [{"id": "web", "ip": f"127.0.0.1:{backend.port}"}]},
    ]}))
    https_port = free_port()
    out = tmp_path / name / "haproxy.cfg"
    env = {"COSMOS_BIND": f"127.0.0.1:{http_port}", "COSMOS_HTTPS_BIND": f"127.0.0.1:{https_port}",
           "COSMOS_ACME_DIRECTORY": pebble.directory}
    result = CliRunner().invoke(app, ["generate", str(payload), "--store", f"sqlite://{tmp_path}/{name}.db",
                                      "-o", str(out)], env=env)
    assert result.exit_code == 0, result.stderr
    sock = tmp_path / f"{name}.sock"
    out.write_text(localize(out.read_text(), sock))
    check = subprocess.run([haproxy_bin, "-c", "-f", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return HAProxyProcess(haproxy_bin, out, [http_port, https_port]), https_port, str(sock)


def manager_for(pebble, storage, sock, **kw) -> CertificateManager:
    issuer = Issuer(pebble.directory, "ops@example.test", ca_bundle=pebble.api_ca)
    return CertificateManager(issuer, storage, Installer(RuntimeAPI(UnixSocket(sock))), **kw)


class NoIssuing(Issuer):
    def account(self, stored):  # type: ignore[no-untyped-def]
        raise AssertionError("the second agent talked to the ACME server")

    issue = account


def test_issue_install_and_serve_from_pebble_then_a_second_agent_serves_without_issuing(
        haproxy_bin, tmp_path, pebble, backend) -> None:
    proc, https_port, sock = start_haproxy(haproxy_bin, tmp_path, "one", pebble, backend, pebble.http_port)
    try:
        with pytest.raises(ssl.SSLError):  # nothing to serve yet: refused, not a wrong certificate
            https_get(https_port, "web.example.test", cadata=pebble.root_pem())
        storage = SQLiteStorage(str(tmp_path / "shared.db"))
        changed = []
        manager = manager_for(pebble, storage, sock, on_change=changed.append)
        with capture_logs() as logs:
            assert manager.sync(["web.example.test"]) == {"web.example.test": "issued"}
        assert [e["event"] for e in logs] == ["acme_account_created", "certificate_issued"]
        assert "PRIVATE KEY" not in repr(logs)
        assert [c.names for c in changed[0]] == [("web.example.test",)]
        # The chain HAProxy serves verifies against pebble's root, with SNI, HTTP/2 offered.
        status, _, body, alpn, _ = https_get(https_port, "web.example.test", "/hello", cadata=pebble.root_pem())
        assert (status, body, alpn) == (200, "web /hello", None)
        assert https_get(https_port, "web.example.test", cadata=pebble.root_pem(), alpn=["h2"])[3] == "h2"
        assert proc.proc.poll() is None  # the same HAProxy process throughout: no reload, no restart
        # The challenge entry is gone from the map once the order is done.
        entries = RuntimeAPI(UnixSocket(sock)).show_map("maps/acme-challenges.map")
        assert entries == {}, entries
        assert manager.sync(["web.example.test"]) == {"web.example.test": "valid"}
    finally:
        proc.stop()

    # A second agent with its own HAProxy on the same storage serves the certificate, issuing nothing.
    proc2, https2, sock2 = start_haproxy(haproxy_bin, tmp_path, "two", pebble, backend, free_port())
    try:
        second = manager_for(pebble, SQLiteStorage(str(tmp_path / "shared.db")), sock2)
        second.issuer = NoIssuing(pebble.directory, None)  # it must not issue
        assert second.sync(["web.example.test"]) == {"web.example.test": "installed"}
        assert https_get(https2, "web.example.test", cadata=pebble.root_pem())[0] == 200
        assert (tmp_path / "shared.db").stat().st_mode & 0o777 == 0o600
    finally:
        proc2.stop()


def test_failures_back_off_with_one_line_per_state_change_and_the_rest_keeps_serving(
        haproxy_bin, tmp_path, pebble, backend) -> None:
    proc, https_port, sock = start_haproxy(haproxy_bin, tmp_path, "f", pebble, backend, pebble.http_port)
    try:
        storage = DirStorage(tmp_path / "acme")
        good = manager_for(pebble, storage, sock)
        assert good.sync(["web.example.test"])["web.example.test"] == "issued"

        class WrongAnswer(Installer):
            def publish(self, token: str, key_authorization: str) -> None:
                super().publish(token, "not-the-key-authorization")

        clock = [0.0]
        wrong = CertificateManager(Issuer(pebble.directory, None, ca_bundle=pebble.api_ca), storage,
                                   WrongAnswer(RuntimeAPI(UnixSocket(sock))), clock=lambda: clock[0])
        with capture_logs() as logs:
            assert wrong.sync(["bad.example.test", "*.example.test"]) == {
                "bad.example.test": "failed", "*.example.test": "refused"}
            assert wrong.sync(["bad.example.test", "*.example.test"]) == {
                "bad.example.test": "backoff", "*.example.test": "refused"}
            clock[0] += 61
            assert wrong.sync(["bad.example.test"]) == {"bad.example.test": "failed"}
        events = [(e["event"], e.get("host")) for e in logs]
        assert events == [("acme_wildcard_refused", "*.example.test"), ("acme_failed", "bad.example.test")], logs
        assert "challenge failed" in logs[1]["reason"] and "bad.example.test" in logs[1]["reason"]
        assert "wildcard" in logs[0]["reason"]
        assert wrong.states["bad.example.test"].failures == 2

        unreachable = CertificateManager(Issuer(f"https://127.0.0.1:{free_port()}/dir", None), DirStorage(
            tmp_path / "other"), Installer(RuntimeAPI(UnixSocket(sock))))
        with capture_logs() as logs:
            assert unreachable.sync(["new.example.test"]) == {"new.example.test": "failed"}
        assert len(logs) == 1 and "unreachable" in logs[0]["reason"]
        # Everything already served keeps serving.
        assert https_get(https_port, "web.example.test", cadata=pebble.root_pem())[0] == 200
        assert proc.proc.poll() is None
    finally:
        proc.stop()


def test_renewal_replaces_the_served_certificate_without_a_reload(haproxy_bin, tmp_path, pebble, backend) -> None:
    proc, https_port, sock = start_haproxy(haproxy_bin, tmp_path, "r", pebble, backend, pebble.http_port)
    try:
        storage = DirStorage(tmp_path / "acme")
        manager = manager_for(pebble, storage, sock)
        assert manager.sync(["web.example.test"])["web.example.test"] == "issued"
        root = pebble.root_pem()
        first = https_get(https_port, "web.example.test", cadata=root)[4]
        # Clients keep connecting (a new TLS handshake each) while the certificate is replaced.
        stop, results = threading.Event(), []

        def load() -> None:
            while not stop.is_set():
                try:
                    status, _, _, _, der = https_get(https_port, "web.example.test", cadata=root)
                    results.append((status, der))
                except (OSError, ssl.SSLError) as exc:
                    results.append((repr(exc), b""))

        clients = [threading.Thread(target=load) for _ in range(4)]
        for client in clients:
            client.start()
        try:
            # pebble issues 5-year certificates: renew when fewer than 10 years are left, i.e. now.
            manager.renew_days = 3650
            assert manager.sync(["web.example.test"])["web.example.test"] == "renewed"
            second = https_get(https_port, "web.example.test", cadata=root)[4]
            seen = len(results)
            while len(results) < seen + 20:  # some requests after the renewal too
                time.sleep(0.01)
        finally:
            stop.set()
            for client in clients:
                client.join()
        assert first != second
        assert [r for r in results if r[0] != 200] == []
        assert {der for _, der in results} == {first, second}
        assert (tmp_path / "acme" / "cert" / "web.example.test").stat().st_mode & 0o777 == 0o600
        assert proc.proc.poll() is None
    finally:
        proc.stop()


@pytest.fixture(params=["sqlite", "dynamodb"])
def shared_storage(request, tmp_path):
    """A factory of storages that share one place: a SQLite file, or a table on dynalite."""
    if request.param == "sqlite":
        return lambda: SQLiteStorage(str(tmp_path / "shared.db"))
    request.getfixturevalue("dynalite_env")
    from cosmos_storage_dynamodb.store import DynamoDBStore, Location

    from cosmos_acme.storage import DynamoDBStorage
    from cosmos_core.contracts import StoreURL

    url = StoreURL.parse(f"dynamodb://acme-e2e-{tmp_path.name[-12:].replace('_', '-')}")
    return lambda: DynamoDBStorage(DynamoDBStore(Location.parse(url)), "default")


def test_two_agents_at_once_issue_a_name_once(haproxy_bin, tmp_path, pebble, backend, shared_storage) -> None:
    proc, https_port, sock = start_haproxy(haproxy_bin, tmp_path, "c", pebble, backend, pebble.http_port)
    try:
        agents = [manager_for(pebble, shared_storage(), sock, owner=f"agent-{i}") for i in range(2)]
        outcomes: dict[str, str] = {}
        barrier = threading.Barrier(2)

        def run(manager: CertificateManager) -> None:
            barrier.wait()
            outcomes[manager.owner] = manager.sync(["web.example.test"])["web.example.test"]

        threads = [threading.Thread(target=run, args=(m,)) for m in agents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes.values()).count("issued") == 1, outcomes
        assert set(outcomes.values()) <= {"issued", "leased", "valid"}, outcomes
        # The one that did not issue serves the stored certificate on its next sync.
        assert {m.sync(["web.example.test"])["web.example.test"] for m in agents} == {"valid"}
        assert https_get(https_port, "web.example.test", cadata=pebble.root_pem())[0] == 200
    finally:
        proc.stop()


def test_without_a_runtime_api_each_name_fails_with_one_line(tmp_path, pebble) -> None:
    manager = CertificateManager(Issuer(pebble.directory, None, ca_bundle=pebble.api_ca), DirStorage(tmp_path / "a"))
    with capture_logs() as logs:
        assert manager.sync(["x.example.test"]) == {"x.example.test": "failed"}
    assert len(logs) == 2 and logs[0]["event"] == "acme_account_created"
    assert "no HAProxy runtime API" in logs[1]["reason"]
