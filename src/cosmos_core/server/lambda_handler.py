"""AWS Lambda behind API Gateway: ``cosmos_core.server.lambda_handler.handler``.

The same contract as ``cosmos serve`` (:mod:`cosmos_core.server.api`), for
proxy integrations of both API flavours:

* REST API (payload format 1.0): ``httpMethod``, ``path``, ``headers`` /
  ``multiValueHeaders``;
* HTTP API (payload format 2.0): ``requestContext.http.method``, ``rawPath``,
  ``headers`` (lower-case, repeated values joined by commas).

A ``body`` with ``isBase64Encoded`` is decoded first.  A stage prefix
(``/prod/generate``) is dropped before routing.  Of the limits of ``cosmos
serve``, ``max_head`` (431) and ``max_body`` (413) apply; connections and
requests in flight are API Gateway's and Lambda's business.

Settings come from the environment as everywhere else (``COSMOS_*``), except
that the store defaults to ``dynamodb://``: as in the original, each payload's
``tableName`` is the DynamoDB table that holds its services.  The API object is
built on the first invocation and reused while the Lambda instance stays warm.
One instance handles one request at a time; concurrent instances are kept
consistent by the DynamoDB store's optimistic locking (a conditional write on a
per-table revision item, retried by the pipeline).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cosmos_core.errors import CosmosError
from cosmos_core.logs import get_logger
from cosmos_core.server.api import (
    Api,
    Reply,
    error_reply,
    head_too_large,
    json_media_type,
    route_error,
    too_large,
    unauthorized,
    unsupported_media_type,
)

DEFAULT_STORE = "dynamodb://"
log = get_logger("cosmos.lambda")


@dataclass(frozen=True)
class ProxyRequest:
    """What the contract needs from an API Gateway proxy event."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class BadEvent(ValueError):
    """The event is not an API Gateway proxy event, or its body cannot be decoded."""


def parse_event(event: Mapping[str, Any]) -> ProxyRequest:
    """A :class:`ProxyRequest` from a payload format 1.0 or 2.0 event."""
    if not isinstance(event, Mapping):
        raise BadEvent("event must be an object")
    context = event.get("requestContext") or {}
    if event.get("version") == "2.0":
        http = context.get("http") or {}
        method, path = http.get("method"), event.get("rawPath") or http.get("path")
    else:
        method, path = event.get("httpMethod"), event.get("path")
    if not isinstance(method, str) or not isinstance(path, str):
        raise BadEvent("not an API Gateway proxy event (no method or path)")
    return ProxyRequest(method.upper(), strip_stage(path, context.get("stage")), event_headers(event), event_body(event))


def strip_stage(path: str, stage: Any) -> str:
    """``/prod/generate`` -> ``/generate`` for stage ``prod`` (``$default`` has no prefix)."""
    if isinstance(stage, str) and stage and stage != "$default" and path.startswith(f"/{stage}/"):
        return path[len(stage) + 1 :]
    return path


def event_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Headers with lower-case names; format 1.0's ``multiValueHeaders`` fill the gaps."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if str(name).lower() not in headers and values:
            headers[str(name).lower()] = ",".join(str(v) for v in values)
    return headers


def event_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise BadEvent("body must be a string")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadEvent("body is marked base64 but is not valid base64") from None
    return body.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8: a 400, not a crash


def proxy_response(reply: Reply) -> dict[str, Any]:
    """The Lambda proxy response (accepted by both payload formats)."""
    return {
        "statusCode": reply.status,
        "headers": reply.all_headers(),
        "body": reply.body.decode("utf-8", "replace"),
        "isBase64Encoded": False,
    }


def head_size(request: ProxyRequest) -> int:
    """The size of the request line and headers as they would be sent over HTTP/1.1."""
    line = len(request.method) + len(request.path) + len(" HTTP/1.1\r\n") + 1
    return line + sum(len(k) + len(v) + 4 for k, v in request.headers.items())


def dispatch(api: Api, request: ProxyRequest) -> Reply:
    """The reply to one request: head size, auth, routing, content type and size, then the endpoint."""
    if head_size(request) > api.max_head:
        return head_too_large(api.max_head)
    if not api.authorized(request.headers.get("authorization")):
        return unauthorized()
    refused = route_error(request.method, request.path)
    if refused is not None:
        return refused
    if request.path == "/healthz":
        return api.healthz()
    if request.path == "/status":
        return api.status()
    if not json_media_type(request.headers.get("content-type")):
        return unsupported_media_type()
    if len(request.body) > api.max_body:
        return too_large(api.max_body)
    return api.generate(request.body, request.path)


class LambdaApp:
    """A callable Lambda handler bound to one :class:`Api`."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        try:
            request = parse_event(event)
        except BadEvent as exc:
            log.warning("bad_event", error=str(exc))
            return proxy_response(error_reply(400, str(exc), "event"))
        return proxy_response(dispatch(self.api, request))


def from_environment(environ: Mapping[str, str] | None = None) -> LambdaApp:
    """Settings from ``COSMOS_*`` (store defaulting to ``dynamodb://``), JSON logs."""
    from cosmos_core import logs
    from cosmos_core.settings import load

    env = dict(os.environ if environ is None else environ)
    env.setdefault("COSMOS_STORE", DEFAULT_STORE)
    settings = load(environ=env)
    logs.configure("json", settings.log_level)
    api = Api(settings, liveness="store")  # instances share no memory: posts are recorded in the store
    api.check()
    return LambdaApp(api)


_app: LambdaApp | None = None


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: ``cosmos_core.server.lambda_handler.handler``."""
    global _app
    if _app is None:
        try:
            _app = from_environment()
        except CosmosError as exc:
            log.error("misconfigured", error=str(exc))
            return proxy_response(error_reply(500, f"cosmos is misconfigured: {exc}"))
    return _app(event, context)
