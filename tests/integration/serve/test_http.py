"""``cosmos serve`` over real HTTP: every status code of the contract, auth, concurrency."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.serve.conftest import SEED, Serve
from tests.integration.serve.helpers import Answer, post_json, post_together, request

JSON = {"Content-Type": "application/json"}


def cosmos(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess."""
    code = "import sys; from cosmos_core.cli import main; sys.argv[0] = 'cosmos'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def stored(url: str, table: str, token: str | None = None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = request(url, "GET", "/status", headers=headers)
    assert answer.status == 200, answer
    return answer.json()["tables"].get(table, [])


# ------------------------------------------------------------------ 200


def test_generate_answers_the_config_and_stores_like_cosmos_generate(serve: Serve, tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path / 'served.db'}"
    server = serve(store=store)

    answer = request(server.url, "POST", "/generate", SEED.read_bytes(), JSON)

    assert answer.status == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    cli = cosmos("generate", str(SEED), "--store", f"sqlite://{tmp_path / 'cli.db'}")
    assert cli.returncode == 0, cli.stderr
    assert answer.text == cli.stdout
    assert "server a23nj53h3j4 192.168.1.9:80" in answer.text
    # GET /status is `cosmos status --json` on the same store.
    status = request(server.url, "GET", "/status")
    assert status.status == 200
    cli_status = cosmos("status", "--json", "--store", store)
    assert cli_status.returncode == 0, cli_status.stderr
    assert status.json() == json.loads(cli_status.stdout)
    assert [s["name"] for s in status.json()["tables"]["astro"]] == ["app1", "app2"]


def test_generate_accepts_the_later_dialect_and_charset_parameter(serve: Serve) -> None:
    server = serve()
    payload = {
        "table": "later",
        "running": [],
        "candidates": [{"serviceName": "api", "configMode": "path", "predicate": "/api", "port": 8080,
                        "containers": [{"id": "c1", "ip": "10.0.0.1"}]}],
    }
    answer = request(server.url, "POST", "/generate", json.dumps(payload).encode(),
                     {"Content-Type": "application/json; charset=utf-8"})
    assert answer.status == 200, answer.body
    assert "server c1 10.0.0.1:8080" in answer.text
    assert [s["name"] for s in stored(server.url, "later")] == ["api"]


def test_healthz_is_200_when_the_store_answers(serve: Serve) -> None:
    server = serve()
    answer = request(server.url, "GET", "/healthz")
    assert answer.status == 200
    assert answer.json()["status"] == "ok"


# ------------------------------------------------------------------ 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "payload"),
        (b"[]", "payload"),
        (json.dumps({"tableName": "bad", "runningServices": "nope"}).encode(), "runningServices"),
        (json.dumps({"tableName": "bad", "candidateServices": [
            {"serviceName": "x", "predicate": "a b", "containers": [{"id": "c", "ip": "10.0.0.1:80"}]}]}).encode(),
         "candidateServices[0].predicate"),
        (json.dumps({"tableName": "bad", "candidateServices": [
            {"serviceName": "x", "configMode": "nosuchmode", "predicate": "x.example.com",
             "containers": [{"id": "c", "ip": "10.0.0.1:80"}]}]}).encode(),
         "candidateServices[0].configMode"),
        (json.dumps({"tableName": "bad", "candidateServices": [
            {"serviceName": "x", "predicate": "x.example.com",
             "containers": [{"id": "c", "ip": "bad_host:80"}]}]}).encode(),
         "candidateServices[0].containers[0].ip"),
    ],
)
def test_a_malformed_payload_is_400_with_the_field_and_nothing_is_stored(serve: Serve, body: bytes, field: str) -> None:
    server = serve()
    answer = request(server.url, "POST", "/generate", body, JSON)
    assert answer.status == 400
    error = answer.json()
    assert error["field"] == field
    assert error["error"].startswith(field)
    assert request(server.url, "GET", "/status").json()["tables"] == {}


# ------------------------------------------------------------------ 404 / 405 / 415


def test_an_unknown_route_is_404_and_a_wrong_method_405(serve: Serve) -> None:
    server = serve()
    missing = request(server.url, "GET", "/nope")
    assert missing.status == 404
    assert "error" in missing.json()
    wrong = request(server.url, "GET", "/generate")
    assert wrong.status == 405
    assert wrong.headers["allow"] == "POST"
    assert request(server.url, "DELETE", "/status").status == 405
    assert request(server.url, "GET", "/status/").status == 404  # no slash redirects, as on Lambda


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_wrong_content_type_is_415(serve: Serve, seed: dict[str, Any], content_type: str | None) -> None:
    server = serve()
    headers = {"Content-Type": content_type} if content_type else {}
    answer = request(server.url, "POST", "/generate", json.dumps(seed).encode(), headers)
    assert answer.status == 415
    assert answer.json()["field"] == "Content-Type"
    assert request(server.url, "GET", "/status").json()["tables"] == {}


# ------------------------------------------------------------------ 413


def padded(seed: dict[str, Any], size: int) -> bytes:
    """The seed payload padded with trailing spaces to exactly ``size`` bytes (still valid JSON)."""
    body = json.dumps(seed).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def test_the_default_limit_is_1_mib(serve: Serve, seed: dict[str, Any]) -> None:
    server = serve()
    limit = 1024 * 1024
    assert request(server.url, "POST", "/generate", padded(seed, limit), JSON).status == 200
    over = request(server.url, "POST", "/generate", padded(seed, limit + 1), JSON)
    assert over.status == 413
    assert over.json()["field"] == "body"


def test_the_limit_is_enforced_while_reading_not_only_from_content_length(serve: Serve, seed: dict[str, Any]) -> None:
    server = serve("--max-body", "2000")
    body = padded(seed, 2001)
    chunks = [body[i : i + 500] for i in range(0, len(body), 500)]  # chunked: no Content-Length
    answer = request(server.url, "POST", "/generate", iter(chunks), JSON)
    assert answer.status == 413
    ok = request(server.url, "POST", "/generate", iter([padded(seed, 2000)]), JSON)
    assert ok.status == 200
    assert [s["name"] for s in stored(server.url, "astro")] == ["app1", "app2"]


# ------------------------------------------------------------------ 503


def test_an_unreachable_store_is_503_on_every_endpoint(serve: Serve, tmp_path: Path, seed: dict[str, Any]) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    server = serve(store=f"sqlite://{blocker / 'state.db'}")

    health = request(server.url, "GET", "/healthz")
    assert health.status == 503
    assert "store" in health.json()["error"]
    generate = post_json(server.url, seed)
    assert generate.status == 503
    assert generate.json()["error"].startswith("store unavailable")
    assert request(server.url, "GET", "/status").status == 503
    assert not any(e.get("event") == "request_crashed" for e in server.log_events())


def test_an_unreachable_dynamodb_is_503(serve: Serve, seed: dict[str, Any]) -> None:
    import socket

    import cosmos_storage_dynamodb  # noqa: F401 - installed by `make install`; never skipped

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve(store=f"dynamodb://?endpoint=http://127.0.0.1:{port}&max_attempts=1&region=us-east-1",
                   AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    assert request(server.url, "GET", "/healthz").status == 503
    assert post_json(server.url, seed).status == 503


# ------------------------------------------------------------------ 401


@pytest.mark.parametrize("via", ["env", "flag"])
def test_with_a_token_every_request_without_it_is_401(serve: Serve, seed: dict[str, Any], via: str) -> None:
    token = "s3cret-token"
    server = serve(COSMOS_API_TOKEN=token) if via == "env" else serve("--token", token)
    body = json.dumps(seed).encode()
    for method, path, payload in [("POST", "/generate", body), ("GET", "/healthz", None),
                                  ("GET", "/status", None), ("GET", "/nope", None)]:
        for auth in [None, "Bearer wrong", f"Bearer {token}x", f"Basic {token}", token, "Bearer "]:
            headers = {**JSON, **({"Authorization": auth} if auth else {})}
            answer = request(server.url, method, path, payload, headers)
            assert answer.status == 401, (method, path, auth)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    assert stored(server.url, "astro", token) == []
    good = post_json(server.url, seed, token=token)
    assert good.status == 200
    assert request(server.url, "GET", "/healthz", headers={"Authorization": f"bearer {token}"}).status == 200
    assert request(server.url, "GET", "/nope", headers={"Authorization": f"Bearer {token}"}).status == 404
    assert [s["name"] for s in stored(server.url, "astro", token)] == ["app1", "app2"]


# ------------------------------------------------------------------ concurrency


def test_eight_concurrent_posts_to_one_service_all_land(serve: Serve) -> None:
    server = serve()
    ids = [f"web{i}" for i in range(8)]
    running = [{"serviceName": "web", "id": cid, "ip": f"10.1.0.{i + 1}:8080"} for i, cid in enumerate(ids)]

    def payload(i: int) -> dict[str, Any]:
        return {
            "tableName": "concurrent",
            "runningServices": copy.deepcopy(running),
            "candidateServices": [{"serviceName": "web", "configMode": "host", "predicate": "web.example.com",
                                   "containers": [running[i] | {}]}],
        }

    answers = post_together([(server.url, payload(i)) for i in range(len(ids))])

    assert all(isinstance(a, Answer) and a.status == 200 for a in answers), answers
    services = stored(server.url, "concurrent")
    assert [s["name"] for s in services] == ["web"]
    assert sorted(c["id"] for c in services[0]["containers"]) == ids
    # Requests for one table were serialised by the server: no store conflict, no retry.
    passes = [e for e in server.log_events() if e.get("event") == "reconciled" and e.get("table") == "concurrent"]
    assert len(passes) == 8
    assert all(e["attempts"] == 1 for e in passes)
    assert not any(e.get("event") == "store_conflict" for e in server.log_events())


def test_deeply_nested_json_is_400_naming_the_payload(serve: Serve) -> None:
    """1,000 levels in 2 KB (issue 13): bad input, not a 500; nothing stored; the server keeps serving."""
    server = serve()
    for body in (b"[" * 1000 + b"]" * 1000,
                 b'{"tableName": "deep", "runningServices": ' + b"[" * 1000 + b"]" * 1000 + b"}",
                 b'{"candidateServices": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}"):
        answer = request(server.url, "POST", "/generate", body, JSON)
        assert answer.status == 400, answer.body[:200]
        assert answer.json()["field"] == "payload"
    assert request(server.url, "GET", "/status").json()["tables"] == {}
    assert not any(e.get("event") == "request_crashed" for e in server.log_events())
