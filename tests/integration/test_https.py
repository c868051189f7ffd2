"""HTTPS through the real HAProxy: SNI from the crt-list, ALPN h2, redirects, HSTS, refusals."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cosmos_core.cli import app
from tests.integration.conftest import unavailable
from tests.support.haproxy import Backend, HAProxyProcess, free_port, localize
from tests.support.tls import http_get, https_get, make_ca


@pytest.fixture(scope="module")
def ca():
    return make_ca()


@pytest.fixture
def site(haproxy_bin, tmp_path, ca):
    """Certificates for app.example.com and *.wild.test; services app (HSTS), red (redirect), plain (off), api."""
    certs = tmp_path / "certs-in"
    certs.mkdir()
    (certs / "app.pem").write_bytes(ca.issue(["app.example.com"]))
    (certs / "wild.pem").write_bytes(ca.issue(["*.wild.test"]))
    (certs / "expired.pem").write_bytes(ca.issue(["old.example.com"], days=-1, start_days=-30))
    backends = {name: Backend(name) for name in ("app", "red", "plain", "api")}

    def svc(name: str, mode: str, predicate: str, **extra: object) -> dict:
        return {"serviceName": name, "configMode": mode, "predicate": predicate,
                "containers": [{"id": name, "ip": f"127.0.0.1:{backends[name].port}"}], **extra}

    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"table": "tls", "candidates": [
        svc("app", "host", "app.example.com", hsts=31536000),
        svc("red", "host", "red.wild.test", https="redirect"),
        svc("plain", "host", "plain.wild.test", https="off"),
        svc("api", "path", "/api"),
    ]}))
    http_port, https_port = free_port(), free_port()
    out = tmp_path / "bundle" / "haproxy.cfg"
    env = {"COSMOS_BIND": f"127.0.0.1:{http_port}", "COSMOS_HTTPS_BIND": f"127.0.0.1:{https_port}"}
    result = CliRunner().invoke(app, ["generate", str(payload), "--store", f"sqlite://{tmp_path}/s.db",
                                      "--certs-dir", str(certs), "-o", str(out)], env=env)
    assert result.exit_code == 0, result.stderr
    assert "expired.pem" in result.stderr + result.stdout  # skipped with a warning, the rest serves
    out.write_text(localize(out.read_text()))
    check = subprocess.run([haproxy_bin, "-c", "-f", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = HAProxyProcess(haproxy_bin, out, [http_port, https_port])
    yield {"http": http_port, "https": https_port, "ca": ca.pem, "dir": out.parent}
    proc.stop()
    for backend in backends.values():
        backend.close()


def test_bundle_holds_private_certificates_and_a_crt_list(site) -> None:
    assert (site["dir"] / "crt-list").read_text() == "certs/app.pem\ncerts/wild.pem\n"
    assert (site["dir"] / "certs" / "app.pem").stat().st_mode & 0o777 == 0o600
    assert not (site["dir"] / "certs" / "expired.pem").exists()


def test_sni_picks_the_certificate_and_routes_like_http(site) -> None:
    status, headers, body, _, _ = https_get(site["https"], "app.example.com", "/x?y=1", cadata=site["ca"])
    assert (status, body) == (200, "app /x?y=1")
    status, _, body, _, _ = https_get(site["https"], "red.wild.test", "/api/v", host="red.wild.test",
                                      cadata=site["ca"])
    assert (status, body) == (200, "red /api/v")  # host rules before path rules, as on HTTP
    status, _, body, _, _ = https_get(site["https"], "app.example.com", "/api/users", host="nohost.test",
                                      cadata=site["ca"])
    assert (status, body) == (200, "api /api/users")
    assert http_get(site["http"], "nohost.test", "/api/users")[2] == "api /api/users"


def test_alpn_negotiates_h2_and_http11(site) -> None:
    assert https_get(site["https"], "app.example.com", cadata=site["ca"], alpn=["h2", "http/1.1"])[3] == "h2"
    assert https_get(site["https"], "app.example.com", cadata=site["ca"], alpn=["http/1.1"])[3] == "http/1.1"
    curl = shutil.which("curl")
    if curl is None:
        unavailable("curl not installed")
    cafile = site["dir"].parent / "ca.pem"
    cafile.write_bytes(site["ca"])
    result = subprocess.run(
        [curl, "-sS", "--http2", "--cacert", str(cafile), "--resolve", f"app.example.com:{site['https']}:127.0.0.1",
         f"https://app.example.com:{site['https']}/h2", "-w", "\n%{http_version}"],
        capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["app /h2", "2"]


def test_redirect_is_308_keeping_path_and_query(site) -> None:
    status, headers, _ = http_get(site["http"], f"red.wild.test:{site['http']}", "/a/b?c=1&d=2")
    assert status == 308
    assert headers["location"] == f"https://red.wild.test:{site['https']}/a/b?c=1&d=2"
    # Services with https=on are served on both; https=off only on HTTP.
    assert http_get(site["http"], "app.example.com", "/p")[:3:2] == (200, "app /p")
    assert http_get(site["http"], "plain.wild.test", "/p")[:3:2] == (200, "plain /p")
    status, _, body, _, _ = https_get(site["https"], "plain.wild.test", "/p", cadata=site["ca"])
    assert status == 404 and "no service matches" in body


def test_hsts_only_on_https_responses_of_services_that_ask(site) -> None:
    _, headers, *_ = https_get(site["https"], "app.example.com", cadata=site["ca"])
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in http_get(site["http"], "app.example.com")[1]
    _, headers, *_ = https_get(site["https"], "red.wild.test", cadata=site["ca"])
    assert "strict-transport-security" not in headers


def test_a_name_without_a_certificate_is_refused_and_tls_below_12_too(site) -> None:
    with pytest.raises(ssl.SSLError):
        https_get(site["https"], "unknown.example.com", cadata=site["ca"])
    with pytest.raises(ssl.SSLError):
        https_get(site["https"], "old.example.com", cadata=site["ca"])  # its certificate was skipped
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with pytest.warns(DeprecationWarning):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    import socket

    with socket.create_connection(("127.0.0.1", site["https"]), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw, server_hostname="app.example.com")


def test_a_default_certificate_serves_names_without_one(haproxy_bin, tmp_path, ca) -> None:
    certs = tmp_path / "in"
    certs.mkdir()
    (certs / "fallback.pem").write_bytes(ca.issue(["fallback.example.com"]))
    (certs / "app.pem").write_bytes(ca.issue(["app.example.com"]))
    backend = Backend("app")
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"table": "d", "candidates": [
        {"serviceName": "app", "configMode": "path", "predicate": "/",
         "containers": [{"id": "app", "ip": f"127.0.0.1:{backend.port}"}]}]}))
    http_port, https_port = free_port(), free_port()
    out = tmp_path / "b" / "haproxy.cfg"
    env = {"COSMOS_BIND": f"127.0.0.1:{http_port}", "COSMOS_HTTPS_BIND": f"127.0.0.1:{https_port}",
           "COSMOS_HTTPS_DEFAULT_CERT": "fallback"}
    result = CliRunner().invoke(app, ["generate", str(payload), "--store", f"sqlite://{tmp_path}/s.db",
                                      "--certs-dir", str(certs), "-o", str(out)], env=env)
    assert result.exit_code == 0, result.stderr
    assert (out.parent / "crt-list").read_text().splitlines()[0] == "certs/fallback.pem"
    out.write_text(localize(out.read_text()))
    proc = HAProxyProcess(haproxy_bin, out, [http_port, https_port])
    try:
        from cryptography import x509

        ctx = ssl.create_default_context(cadata=ca.pem.decode())
        ctx.check_hostname = False  # the fallback does not name the host: inspect what is served
        import socket

        with socket.create_connection(("127.0.0.1", https_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="unknown.example.com") as conn:
                served = x509.load_der_x509_certificate(conn.getpeercert(binary_form=True))
        names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == ["fallback.example.com"]
        assert https_get(https_port, "app.example.com", "/z", cadata=ca.pem)[2] == "app /z"
    finally:
        proc.stop()
        backend.close()


def test_certs_dir_changes_go_into_the_running_haproxy_through_the_runtime_api(haproxy_bin, tmp_path, ca) -> None:
    """New, replaced and removed files of --certs-dir are served by the same HAProxy process (no reload,
    no restart), the live directory follows, and a bad file is skipped with one warning."""
    import os
    from types import SimpleNamespace

    from structlog.testing import capture_logs

    from cosmos_core.builtin.haproxy_emitter import DEFAULT_TEMPLATE, HAProxyEmitter, tls_config
    from cosmos_core.settings import Settings
    from cosmos_core.tls_agent import attach

    certs = tmp_path / "certs-in"
    certs.mkdir()
    (certs / "a.pem").write_bytes(ca.issue(["a.example.com"]))
    backend = Backend("app")
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"table": "tls", "candidates": [
        {"serviceName": name, "configMode": "host", "predicate": f"{name}.example.com",
         "containers": [{"id": name, "ip": f"127.0.0.1:{backend.port}"}]} for name in ("a", "b")]}))
    http_port, https_port = free_port(), free_port()
    out, sock = tmp_path / "bundle" / "haproxy.cfg", tmp_path / "haproxy.sock"
    env = {"COSMOS_BIND": f"127.0.0.1:{http_port}", "COSMOS_HTTPS_BIND": f"127.0.0.1:{https_port}"}
    result = CliRunner().invoke(app, ["generate", str(payload), "--store", f"sqlite://{tmp_path}/s.db",
                                      "--certs-dir", str(certs), "-o", str(out)], env=env)
    assert result.exit_code == 0, result.stderr
    out.write_text(localize(out.read_text(), sock))
    proc = HAProxyProcess(haproxy_bin, out, [http_port, https_port])
    settings = Settings(reloader="host", options={"certs_dir": str(certs), "haproxy_config": str(out),
                                                  "haproxy_socket": str(sock), "https_bind": f"127.0.0.1:{https_port}"})
    runtime = SimpleNamespace(emitter=HAProxyEmitter(DEFAULT_TEMPLATE, f"127.0.0.1:{http_port}", tls_config(settings)),
                              settings=settings, certificate_resolver=None)
    agent = SimpleNamespace(observers=[])
    try:
        wiring = attach(runtime, agent, poll=None)
        assert wiring and agent.observers == [wiring.observe]
        assert wiring.refresh() is False  # nothing changed: no file read
        first = https_get(https_port, "a.example.com", cadata=ca.pem)[4]
        with pytest.raises(ssl.SSLError):
            https_get(https_port, "b.example.com", cadata=ca.pem)

        # A new file: served at once by the running HAProxy, and written beside the live config.
        (certs / "b.pem").write_bytes(ca.issue(["b.example.com"]))
        with capture_logs() as logs:
            agent.observers[0](SimpleNamespace(services=[]), SimpleNamespace(reloaded=False))  # after a pass
        assert [(e["event"], e.get("file"), e.get("via")) for e in logs if e["event"].startswith("certificate_")] == [
            ("certificate_added", "certs/b.pem", "runtime API")]
        assert https_get(https_port, "b.example.com", cadata=ca.pem)[0] == 200
        assert (out.parent / "crt-list").read_text() == "certs/a.pem\ncerts/b.pem\n"
        assert (out.parent / "certs" / "b.pem").stat().st_mode & 0o777 == 0o600

        # A replaced file (same name, new key): the new certificate serves.
        (certs / "a.pem").write_bytes(ca.issue(["a.example.com"]))
        stat = (certs / "a.pem").stat()
        os.utime(certs / "a.pem", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert wiring.refresh() is True
        assert https_get(https_port, "a.example.com", cadata=ca.pem)[4] != first

        # A removed file leaves HAProxy and the live directory; a bad file is skipped with one warning.
        (certs / "b.pem").unlink()
        (certs / "bad.pem").write_bytes(b"not a certificate")
        with capture_logs() as logs:
            assert wiring.refresh() is True
            (certs / "note.pem").write_bytes(ca.issue(["note.example.com"], days=-1, start_days=-5))  # expired
            assert wiring.refresh() is True
            assert wiring.refresh() is False
        warnings = [(e["file"].rsplit("/", 1)[1], e["reason"][:7]) for e in logs if e["event"] == "certificate_skipped"]
        assert warnings == [("bad.pem", "no PEM "), ("note.pem", "expired")]
        with pytest.raises(ssl.SSLError):
            https_get(https_port, "b.example.com", cadata=ca.pem)
        assert not (out.parent / "certs" / "b.pem").exists()
        assert (out.parent / "crt-list").read_text() == "certs/a.pem\n"
        assert https_get(https_port, "a.example.com", cadata=ca.pem)[0] == 200  # the rest keeps serving
        assert proc.proc.poll() is None  # one HAProxy process throughout
        assert {c.name for c in runtime.emitter.tls.certificates} == {"a"}  # the next bundle agrees

        # A file that goes bad (a copy caught midway) keeps serving its last good version: no outage.
        served = https_get(https_port, "a.example.com", cadata=ca.pem)[4]
        (certs / "a.pem").write_bytes(b"garbage\n")
        with capture_logs() as logs:
            assert wiring.refresh() is True
        assert [(e["event"], e.get("serving")) for e in logs if e["event"].startswith("certificate_")] == [
            ("certificate_skipped", "last good version")]
        assert https_get(https_port, "a.example.com", cadata=ca.pem)[4] == served
        assert (out.parent / "crt-list").read_text() == "certs/a.pem\n"

        # Two files whose names sanitise alike both serve (once one replaced the other silently).
        from cosmos_core.certs import file_name

        for stem, host in (("c d", "cd1.example.com"), ("c_d", "cd2.example.com")):
            (certs / f"{stem}.pem").write_bytes(ca.issue([host]))
        with capture_logs() as logs:
            assert wiring.refresh() is True
        added = sorted(e["file"] for e in logs if e["event"] == "certificate_added" and e["via"] == "runtime API")
        assert added == sorted(["certs/c_d.pem", f"certs/{file_name('c d')}.pem"])
        for stem, host in (("c d", "cd1.example.com"), ("c_d", "cd2.example.com")):  # no route: 404 after TLS
            leaf = (certs / f"{stem}.pem").read_text().split("-----END CERTIFICATE-----")[0]
            assert https_get(https_port, host, cadata=ca.pem)[4] == ssl.PEM_cert_to_DER_cert(
                leaf + "-----END CERTIFICATE-----\n")
        assert proc.proc.poll() is None
    finally:
        proc.stop()
        backend.close()
