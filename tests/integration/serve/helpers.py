"""Plain HTTP for the serve tests (http.client: full control over headers and framing)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        return json.loads(self.body)


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Answer:
    """One request on a fresh connection; an iterable body is sent chunked."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=dict(headers or {}), encode_chunked=chunked)
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def post_json(url: str, data: Any, token: str | None = None, path: str = "/generate") -> Answer:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return request(url, "POST", path, json.dumps(data).encode(), headers)


def post_together(targets: list[tuple[str, Any]], timeout: float = 30.0) -> list[Answer | BaseException]:
    """POST each ``(url, payload)`` from its own thread, all released at once; answers in order."""
    import threading

    barrier = threading.Barrier(len(targets))
    answers: list[Answer | BaseException] = [RuntimeError("not run")] * len(targets)

    def post(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            answers[i] = post_json(*targets[i])
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's assertion
            answers[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return answers
