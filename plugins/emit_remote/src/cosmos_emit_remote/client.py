"""The ``remote`` pass's client: POST the snapshot to a Cosmos server, return its config.

:class:`cosmos_core.passes.RemotePass` hands it the whole pass: the remote
validates, stores and renders; nothing is stored locally.

Failures:

* connection refused/reset, timeout, HTTP 429/500/502/503/504: retried
  ``remote_retries`` times with exponential backoff and jitter, then a
  :class:`RemoteError`;
* any other non-200 answer (400 bad payload, 401 token, 413, 415): a
  :class:`RemoteError` at once, with the server's message.

The agent logs a :class:`RemoteError` like any failed pass and keeps the config
HAProxy has; it retries an unavailable remote with backoff until it answers (or
a newer snapshot arrives), so it catches up once the remote is back.  A refusal
is not retried.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from cosmos_core import payload
from cosmos_core.backoff import Backoff
from cosmos_core.errors import CosmosError, ValidationError
from cosmos_core.logs import get_logger
from cosmos_core.model import Snapshot
from cosmos_core.settings import Settings

log = get_logger("cosmos.emit.remote")

RETRYABLE = frozenset({429, 500, 502, 503, 504})
DEFAULT_BACKOFF = 0.2
MAX_BACKOFF = 5.0
MAX_CONFIG_BYTES = 16 * 1024 * 1024
USER_AGENT = "cosmos-agent (emit-remote)"


class RemoteError(CosmosError):
    """The remote Cosmos refused the request or could not be reached.

    A refusal (400, 401, 413, 415) is not retryable: the same request gets the same answer.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused
        self.exit_code = 2 if refused else 1

    @property
    def retryable(self) -> bool:
        return not self.refused


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str


def check_url(url: str | None) -> str:
    """``http(s)://host[:port][/prefix]`` without query or fragment; the base URL of a Cosmos."""
    if not url:
        raise ValidationError(
            "remote_url", url, "must be set for the remote emitter (COSMOS_REMOTE_URL), e.g. http://cosmos:8080"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValidationError("remote_url", url, "must be an http:// or https:// URL without query or fragment")
    return url.rstrip("/")


def backoff_delay(attempt: int, base: float, cap: float = MAX_BACKOFF) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped, jittered.

    The delay lies in ``[d/2, d]`` with ``d = min(cap, base * 2**(attempt-1))``.
    """
    return Backoff(base, cap, jitter="equal").delay(attempt)


def error_text(answer: Answer) -> str:
    """The server's ``{"error": ...}`` message, or the start of the body."""
    try:
        data = json.loads(answer.body)
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
    except ValueError:
        pass
    return answer.body[:200].decode("utf-8", "replace").strip() or "(empty body)"


class RemoteCosmos:
    """A client of ``POST {url}/generate``, with timeout, retries and bearer token."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = check_url(url)
        self.endpoint = self.url + "/generate"
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteCosmos:
        """From ``remote_url``, ``api_token``, ``remote_timeout``, ``remote_retries``
        and ``remote_backoff`` (``[plugins.remote] backoff``, seconds, default 0.2).

        Raises :class:`ValidationError` naming the setting that is missing or out of range.
        """
        from cosmos_emit_remote.plugin import REMOTE_BACKOFF, REMOTE_RETRIES, REMOTE_TIMEOUT, REMOTE_URL

        timeout, retries = settings.option(REMOTE_TIMEOUT), settings.option(REMOTE_RETRIES)
        backoff = settings.option(REMOTE_BACKOFF)
        if timeout <= 0:
            raise ValidationError("remote_timeout", timeout, "must be more than 0 seconds")
        if retries < 0:
            raise ValidationError("remote_retries", retries, "must be 0 or more")
        if backoff < 0:
            raise ValidationError("plugins.remote.backoff", backoff, "must be a number of seconds >= 0")
        return cls(settings.option(REMOTE_URL) or "", settings.api_token, timeout, retries, backoff)

    def remote_config(self, snapshot: Snapshot, table: str) -> str:
        """The config the remote returns for ``snapshot``; :class:`RemoteError` if it cannot."""
        body = payload.dumps(replace(snapshot, table=table))
        attempts = self.retries + 1
        problem = ""
        for attempt in range(1, attempts + 1):
            try:
                answer = self.post(body)
            except OSError as exc:  # URLError, timeouts, resets
                problem = describe(exc)
            else:
                if answer.status == 200:
                    return self._config(answer)
                problem = f"HTTP {answer.status}: {error_text(answer)}"
                if answer.status not in RETRYABLE:
                    raise RemoteError(f"remote cosmos {self.endpoint} refused the request ({problem})", refused=True)
            if attempt < attempts:
                delay = backoff_delay(attempt, self.backoff)
                log.warning("remote_retry", url=self.endpoint, attempt=attempt, error=problem,
                            retry_in_s=round(delay, 3))
                self.sleep(delay)
        raise RemoteError(f"remote cosmos {self.endpoint} unavailable after {attempts} attempt(s): {problem}")

    def post(self, body: bytes) -> Answer:
        """One ``POST /generate``; an HTTP error status is an :class:`Answer`, not an exception."""
        headers = {"Content-Type": "application/json", "Accept": "text/plain", "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Answer(response.status, response.read(MAX_CONFIG_BYTES + 1),
                              response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            with exc:
                return Answer(exc.code, exc.read(64 * 1024), exc.headers.get("Content-Type", ""))

    def _config(self, answer: Answer) -> str:
        if not answer.content_type.lower().startswith("text/plain"):
            raise RemoteError(f"remote cosmos {self.endpoint} answered 200 with {answer.content_type or 'no'} "
                              "content type, expected text/plain; is remote_url a Cosmos?")
        if len(answer.body) > MAX_CONFIG_BYTES:
            raise RemoteError(f"remote cosmos {self.endpoint} sent a config over {MAX_CONFIG_BYTES} bytes")
        try:
            return answer.body.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteError(f"remote cosmos {self.endpoint} sent a config that is not UTF-8") from None


def describe(exc: OSError) -> str:
    """A one-line reason for a network error (``URLError`` wraps the socket error)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError):
        return reason.strerror or str(reason) or type(reason).__name__
    return str(reason)
