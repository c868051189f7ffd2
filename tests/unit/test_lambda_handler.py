"""The AWS Lambda handler with synthetic API Gateway events (REST v1, HTTP API v2).

The contract tests run against the embedded SQLite store; the DynamoDB tests
use moto, through ``handler`` exactly as Lambda calls it (store from the
environment, defaulting to ``dynamodb://`` with the payload's table).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cosmos_storage_dynamodb  # noqa: F401 - the handler's default store; installed by `make install`
import pytest

from cosmos_core.server import lambda_handler
from cosmos_core.server.api import Api
from cosmos_core.server.lambda_handler import LambdaApp, parse_event, strip_stage
from cosmos_core.settings import Settings

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-payload.json"
TOKEN = "lambda-token"


def v1_event(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             b64: bool = False, stage: str = "prod") -> dict[str, Any]:
    """A REST API (payload format 1.0) proxy event."""
    headers = headers or {}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": None,
        "requestContext": {"stage": stage, "path": f"/{stage}{path}", "httpMethod": method},
        "body": None if body is None else (base64.b64encode(body).decode() if b64 else body.decode()),
        "isBase64Encoded": b64,
    }


def v2_event(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             b64: bool = False, stage: str = "$default") -> dict[str, Any]:
    """An HTTP API (payload format 2.0) proxy event."""
    raw = path if stage == "$default" else f"/{stage}{path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "requestContext": {"stage": stage, "http": {"method": method, "path": raw, "protocol": "HTTP/1.1"}},
        "isBase64Encoded": b64,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if b64 else body.decode()
    return event


EVENTS = [pytest.param(v1_event, id="rest-v1"), pytest.param(v2_event, id="http-v2")]
JSON = {"Content-Type": "application/json"}


def body_json(response: dict[str, Any]) -> Any:
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


@pytest.fixture
def app(tmp_path: Path) -> Iterator[LambdaApp]:
    api = Api(Settings(store=f"sqlite://{tmp_path / 'state.db'}", api_token=TOKEN))
    yield LambdaApp(api)
    api.close()


def auth(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", **(extra or {})}


# ------------------------------------------------------------------ event parsing


def test_parse_v1_and_v2_events_alike() -> None:
    body = SEED.read_bytes()
    for event in (v1_event("POST", "/generate", body, JSON, b64=True), v2_event("POST", "/generate", body, JSON),
                  v2_event("POST", "/generate", body, JSON, b64=True, stage="prod")):
        request = parse_event(event)
        assert (request.method, request.path, request.body) == ("POST", "/generate", body)
        assert request.headers["content-type"] == "application/json"


def test_v1_multi_value_headers_fill_missing_headers() -> None:
    event = v1_event("GET", "/status")
    event["multiValueHeaders"] = {"Authorization": ["Bearer x"]}
    assert parse_event(event).headers["authorization"] == "Bearer x"


def test_strip_stage() -> None:
    assert strip_stage("/prod/generate", "prod") == "/generate"
    assert strip_stage("/generate", "prod") == "/generate"
    assert strip_stage("/generate", "$default") == "/generate"
    assert strip_stage("/production/generate", "prod") == "/production/generate"


# ------------------------------------------------------------------ the contract


@pytest.mark.parametrize("make", EVENTS)
@pytest.mark.parametrize("b64", [False, True])
def test_generate_answers_the_config(app: LambdaApp, make: Any, b64: bool) -> None:
    response = app(make("POST", "/generate", SEED.read_bytes(), auth(JSON), b64=b64), None)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert response["isBase64Encoded"] is False
    assert "backend be_app2" in response["body"]
    status = app(make("GET", "/status", headers=auth()), None)
    assert status["statusCode"] == 200
    assert [s["name"] for s in body_json(status)["tables"]["astro"]] == ["app1", "app2"]


@pytest.mark.parametrize("make", EVENTS)
def test_every_error_status(app: LambdaApp, make: Any) -> None:
    seed = SEED.read_bytes()
    cases = [
        (make("POST", "/generate", seed, JSON), 401),
        (make("POST", "/generate", seed, {"Authorization": "Bearer nope", **JSON}), 401),
        (make("GET", "/healthz"), 401),
        (make("GET", "/nope", headers=auth()), 404),
        (make("GET", "/generate", headers=auth()), 405),
        (make("POST", "/generate", seed, auth({"Content-Type": "text/plain"})), 415),
        (make("POST", "/generate", seed + b" " * (1024 * 1024), auth(JSON)), 413),
        (make("POST", "/generate", b'{"tableName": 3}', auth(JSON)), 400),
    ]
    for event, status in cases:
        assert app(event, None)["statusCode"] == status, (event["body"] and event["body"][:30], status)
    refused = app(make("POST", "/generate", b'{"tableName": 3}', auth(JSON)), None)
    assert body_json(refused)["field"] == "tableName"
    assert body_json(app(make("GET", "/status", headers=auth()), None))["tables"] == {}
    assert app(make("GET", "/healthz", headers=auth()), None)["statusCode"] == 200


@pytest.mark.parametrize("make", EVENTS)
def test_a_lone_surrogate_in_the_body_is_400_not_a_crash(app: LambdaApp, make: Any) -> None:
    event = make("POST", "/generate", b"{}", auth(JSON))
    event["body"] = '{"tableName": "\ud800"}'
    assert app(event, None)["statusCode"] == 400


def test_a_broken_base64_body_or_a_foreign_event_is_400(app: LambdaApp) -> None:
    event = v2_event("POST", "/generate", SEED.read_bytes(), auth(JSON))
    event.update(body="%%% not base64", isBase64Encoded=True)
    assert app(event, None)["statusCode"] == 400
    assert app({"Records": []}, None)["statusCode"] == 400


# ------------------------------------------------------------------ DynamoDB (moto)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """moto's DynamoDB (dummy credentials, no AWS config files), and a fresh module-level handler."""
    import moto  # a test dependency: never skipped

    from tests.plugins.storage_dynamodb.conftest import set_aws_test_env

    for name in ("COSMOS_STORE", "COSMOS_API_TOKEN", "COSMOS_CONFIG", "COSMOS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    set_aws_test_env(monkeypatch, tmp_path)
    monkeypatch.setattr(lambda_handler, "_app", None)
    with moto.mock_aws():
        import boto3

        yield boto3.client("dynamodb", region_name="us-east-1")
    if lambda_handler._app is not None:
        lambda_handler._app.api.close()


@pytest.mark.parametrize("make", EVENTS)
def test_the_handler_stores_in_the_payloads_dynamodb_table(aws: Any, make: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray cosmos.toml
    response = lambda_handler.handler(make("POST", "/generate", SEED.read_bytes(), JSON, b64=True), None)
    assert response["statusCode"] == 200, response["body"]
    assert "server das843j3h3k 192.168.1.10:80" in response["body"]
    assert "astro" in aws.list_tables()["TableNames"]  # the payload's tableName, as the original
    assert aws.scan(TableName="astro")["Count"] > 0

    # A second host's payload for the same table joins the stored services.
    second = {"tableName": "astro",
              "runningServices": [{"serviceName": "app2", "id": "das843j3h3k", "ip": "192.168.1.10:80"}],
              "candidateServices": [{"serviceName": "app3", "configMode": "path", "predicate": "/three",
                                     "containers": [{"id": "c3", "ip": "192.168.1.12:8080"}]}]}
    response = lambda_handler.handler(make("POST", "/generate", json.dumps(second).encode(), JSON), None)
    assert response["statusCode"] == 200, response["body"]
    assert "backend be_app3" in response["body"]
    status = body_json(lambda_handler.handler(make("GET", "/status"), None))
    assert status["store"] == "dynamodb://"
    assert [s["name"] for s in status["tables"]["astro"]] == ["app2", "app3"]
    assert lambda_handler.handler(make("GET", "/healthz"), None)["statusCode"] == 200


def test_the_handler_reads_the_token_and_store_from_the_environment(aws: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COSMOS_API_TOKEN", TOKEN)
    monkeypatch.setenv("COSMOS_STORE", "dynamodb://cosmos-state")
    event = v2_event("POST", "/generate", SEED.read_bytes(), JSON)
    assert lambda_handler.handler(event, None)["statusCode"] == 401
    event["headers"]["authorization"] = f"Bearer {TOKEN}"
    assert lambda_handler.handler(event, None)["statusCode"] == 200
    assert aws.list_tables()["TableNames"] == ["cosmos-state"]


def test_a_misconfigured_handler_answers_500_not_a_crash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lambda_handler, "_app", None)
    monkeypatch.setenv("COSMOS_STORE", "nosuch://x")
    response = lambda_handler.handler(v2_event("GET", "/healthz"), None)
    assert response["statusCode"] == 500
    assert "nosuch" in body_json(response)["error"]
    assert lambda_handler._app is None


def test_a_table_name_dynamodb_refuses_is_a_400_naming_the_field(aws: Any, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    body = SEED.read_text().replace('"astro"', '"ab"').encode()  # DynamoDB table names have 3+ characters
    response = lambda_handler.handler(v1_event("POST", "/generate", body, JSON), None)
    assert response["statusCode"] == 400
    assert body_json(response)["field"] == "tableName"
    assert aws.list_tables()["TableNames"] == []


# ------------------------------------------------------------------ issue 13 / 14 on Lambda


@pytest.mark.parametrize("make", EVENTS)
def test_deeply_nested_json_is_400_naming_the_payload(app: LambdaApp, make: Any) -> None:
    body = b'{"tableName": "deep", "runningServices": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = app(make("POST", "/generate", body, auth(JSON)), None)
    assert response["statusCode"] == 400
    assert body_json(response)["field"] == "payload"
    assert body_json(app(make("GET", "/status", headers=auth()), None))["tables"] == {}


@pytest.mark.parametrize("make", EVENTS)
def test_a_head_over_max_head_is_431_before_auth(app: LambdaApp, make: Any) -> None:
    limit = app.api.max_head
    response = app(make("GET", "/healthz", headers={"X-Pad": "a" * limit}), None)
    assert response["statusCode"] == 431
    assert body_json(response)["field"] == "headers"
    assert app(make("GET", "/healthz", headers=auth({"X-Pad": "a" * (limit - 200)})), None)["statusCode"] == 200


@pytest.mark.parametrize("make", EVENTS)
def test_post_cosmonaut_answers_the_config_as_one_json_string(app: LambdaApp, make: Any) -> None:
    app(make("POST", "/generate", SEED.read_bytes(), auth(JSON)), None)
    plain = app(make("POST", "/generate", SEED.read_bytes(), auth(JSON)), None)  # the seed's second pass: stable
    response = app(make("POST", "/cosmonaut", SEED.read_bytes(), auth(JSON)), None)
    assert response["statusCode"] == 200
    assert body_json(response) == plain["body"]
    inner = response["body"][1:-1]
    assert '"' not in inner and "error" not in inner and " " not in inner
    refused = app(make("POST", "/cosmonaut", b'{"tableName": 3}', auth(JSON)), None)
    assert refused["statusCode"] == 400 and "error" in refused["body"]
