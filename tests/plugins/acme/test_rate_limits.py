"""The ACME server's rate limits: ``Retry-After`` (seconds or an HTTP-date) and the ``rateLimited`` error,
read through certbot's ``acme`` client from a tiny local HTTP stand-in of an ACME server."""

from __future__ import annotations

import datetime as dt
import json
import threading
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from structlog.testing import capture_logs

from cosmos_acme.issuer import RATE_LIMIT_DEFAULT, AcmeError, Issuer, parse_retry_after
from cosmos_acme.manager import CertificateManager
from cosmos_acme.storage import DirStorage


class RateLimitingACME:
    """Directory and nonces like an ACME server; every new account is refused with ``problem`` and
    ``Retry-After: retry_after`` (no header when None).  ``posts`` counts the refused requests."""

    def __init__(self, retry_after: str | None, problem: str = "rateLimited", status: int = 429) -> None:
        self.retry_after, self.problem, self.status, self.posts = retry_after, problem, status, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: dict | None, content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Replay-Nonce", "bm9uY2Utbm9uY2Utbm9uY2U")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self._send(200, None)

            def do_GET(self) -> None:  # noqa: N802
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                self._send(200, {"newNonce": f"{base}/nonce", "newAccount": f"{base}/account",
                                 "newOrder": f"{base}/order", "revokeCert": f"{base}/revoke",
                                 "keyChange": f"{base}/key"})

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.posts += 1
                headers = {"Retry-After": server.retry_after} if server.retry_after is not None else {}
                self._send(server.status, {"type": f"urn:ietf:params:acme:error:{server.problem}",
                                           "detail": "too many new accounts from this address", "status": server.status},
                           "application/problem+json", headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.directory = f"http://127.0.0.1:{self.httpd.server_address[1]}/dir"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def acme_server():
    servers: list[RateLimitingACME] = []

    def make(*args, **kwargs) -> RateLimitingACME:
        servers.append(RateLimitingACME(*args, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_retry_after_seconds_of_a_rate_limited_error_reach_the_error(acme_server) -> None:
    server = acme_server("1234")
    with pytest.raises(AcmeError) as failed:
        Issuer(server.directory, "ops@example.test").account(None)
    assert failed.value.kind == "rateLimited" and failed.value.retry_after == 1234
    assert "rateLimited" in str(failed.value) and "too many new accounts" in str(failed.value)


def test_retry_after_as_an_http_date(acme_server) -> None:
    when = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(hours=2)
    server = acme_server(format_datetime(when, usegmt=True))
    with pytest.raises(AcmeError) as failed:
        Issuer(server.directory, None).account(None)
    assert 7000 < failed.value.retry_after <= 7200


def test_rate_limited_without_a_header_waits_the_default_and_other_errors_keep_the_header(acme_server) -> None:
    with pytest.raises(AcmeError) as failed:
        Issuer(acme_server(None).directory, None).account(None)
    assert failed.value.retry_after == RATE_LIMIT_DEFAULT
    with pytest.raises(AcmeError) as busy:  # a server that is busy, not rate-limiting: its Retry-After counts
        Issuer(acme_server("90", problem="serverInternal", status=503).directory, None).account(None)
    assert (busy.value.kind, busy.value.retry_after) == ("serverInternal", 90)
    with pytest.raises(AcmeError) as plain:
        Issuer(acme_server(None, problem="malformed", status=400).directory, None).account(None)
    assert plain.value.retry_after is None


def test_the_manager_waits_the_servers_retry_after_for_that_name_with_one_line(acme_server, tmp_path) -> None:
    server = acme_server("1234")
    clock = [100.0]
    manager = CertificateManager(Issuer(server.directory, None), DirStorage(tmp_path / "acme"), clock=lambda: clock[0])
    with capture_logs() as logs:
        assert manager.sync(["a.test"]) == {"a.test": "failed"}
        assert manager.next_due() == 100 + 1234  # not the 60 s of the first backoff step
        posts = server.posts
        clock[0] += 1233
        assert manager.sync(["a.test"]) == {"a.test": "backoff"}
        assert server.posts == posts  # nothing sent to the server before its time
        clock[0] += 1
        assert manager.sync(["a.test"]) == {"a.test": "failed"}
        assert server.posts > posts
    failed = [e for e in logs if e["event"] == "acme_failed"]
    assert len(failed) == 1 and failed[0]["retry_after_s"] == 1234 and failed[0]["retry_in_s"] == 1234
    assert "rateLimited" in failed[0]["reason"]


@pytest.mark.parametrize("value, seconds", [("120", 120.0), (" 7 ", 7.0), ("", None), (None, None),
                                            ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_parse_retry_after(value, seconds) -> None:
    assert parse_retry_after(value) == seconds
