"""The runtime API client's certificate, crt-list and map commands against a real HAProxy 2.6 (https, issue 12)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest

from cosmos_core.haproxy import tls_runtime
from cosmos_core.haproxy.runtime_api import RuntimeAPI, RuntimeAPIError, TcpSocket, UnixSocket
from tests.integration.haproxy.conftest import Proxy
from tests.support.tls import https_get, make_ca

BODY = """
frontend tls
    bind 127.0.0.1:{port} ssl crt-list {dir}/crt-list strict-sni
    http-request return status 200 content-type text/plain string "tls"
"""


@pytest.fixture
def ca():
    return make_ca()


@pytest.fixture
def proxy(start_haproxy: Callable[[str], Proxy], tmp_path, ca) -> Proxy:
    (tmp_path / "a.pem").write_bytes(ca.issue(["a.example.test"]))
    (tmp_path / "crt-list").write_text(f"{tmp_path}/a.pem\n")
    (tmp_path / "m.map").write_text("")
    return start_haproxy(BODY + "    http-request set-var(txn.x) path,map({dir}/m.map)\n")


def test_certificates_are_added_replaced_and_withdrawn_without_a_reload(proxy: Proxy, tmp_path, ca) -> None:
    api = RuntimeAPI(UnixSocket(str(proxy.admin)))
    crt_list, b = f"{tmp_path}/crt-list", f"{tmp_path}/b.pem"
    assert api.ssl_certs() == {f"{tmp_path}/a.pem"}
    with pytest.raises(ssl.SSLError):
        https_get(proxy.port, "b.example.test", cadata=ca.pem)

    assert tls_runtime.install(api, b, ca.issue(["b.example.test"]), crt_list) == "added"
    first = https_get(proxy.port, "b.example.test", cadata=ca.pem)
    assert (first[0], first[2]) == (200, "tls")
    assert api.crt_list(crt_list) == [f"{tmp_path}/a.pem", b]

    assert tls_runtime.install(api, b, ca.issue(["b.example.test"]), crt_list) == "replaced"
    assert https_get(proxy.port, "b.example.test", cadata=ca.pem)[4] != first[4]

    # A refused PEM aborts its transaction: the served certificate stays, no transaction is left open.
    with pytest.raises(RuntimeAPIError, match="set ssl cert"):
        tls_runtime.install(api, b, b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", crt_list)
    assert https_get(proxy.port, "b.example.test", cadata=ca.pem)[0] == 200
    assert not any(name.startswith("*") for name in api.check(["show ssl cert"])[0].text.splitlines())

    assert tls_runtime.withdraw(api, b, crt_list) is True
    assert b not in api.ssl_certs() and api.crt_list(crt_list) == [f"{tmp_path}/a.pem"]
    with pytest.raises(ssl.SSLError):
        https_get(proxy.port, "b.example.test", cadata=ca.pem)
    assert tls_runtime.withdraw(api, b, crt_list) is False
    assert https_get(proxy.port, "a.example.test", cadata=ca.pem)[0] == 200
    assert proxy.proc.poll() is None


def test_map_entries_and_argument_checks(proxy: Proxy, tmp_path) -> None:
    api = RuntimeAPI(TcpSocket("127.0.0.1", proxy.tcp_port))
    ref = f"{tmp_path}/m.map"
    api.add_map(ref, "tok", "tok.key-authorization")
    assert api.show_map(ref) == {"tok": "tok.key-authorization"}
    assert api.del_map(ref, "tok") is True
    assert api.del_map(ref, "tok") is False  # already gone: not an error
    with pytest.raises(RuntimeAPIError):
        api.add_map(f"{tmp_path}/nosuch.map", "k", "v")
    with pytest.raises(ValueError):
        api.add_map(ref, "two words", "v")
    with pytest.raises(ValueError):
        api.payload("set ssl cert x.pem", "line one\n\nline three")  # an empty line would end the payload
