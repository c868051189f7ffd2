"""The HTTP contract of Cosmos, free of any web framework.

Both front ends - the Starlette app of ``cosmos serve`` and the AWS Lambda
handler - translate their request into calls on :class:`Api` and send back the
:class:`Reply` it returns, so they answer every request alike:

=========================  ===================================================
``POST /generate``         200 ``text/plain`` config; the store is updated as
                           by ``cosmos generate``
``POST /cosmonaut``        the same, the config as one JSON string that the
                           original Cosmonaut client's shell step survives
``GET /healthz``           200 when the store answers, 503 when it does not
``GET /status``            200 JSON, the content of ``cosmos status --json``
malformed payload          400 JSON ``{"error", "field"}``, nothing stored
missing/wrong token        401 (when ``api_token`` is set; constant-time check)
unknown route / method     404 / 405
body over ``max_body``     413
not ``application/json``   415
head over ``max_head``     431 (front ends check it before auth)
over ``max_in_flight``     503 with ``Retry-After`` (``cosmos serve`` only)
store unreachable          503 JSON ``{"error", "field": null}``
=========================  ===================================================

Concurrency: the pipeline and the stores are synchronous, so front ends call
:class:`Api` from worker threads.  Each call borrows a :class:`~cosmos_core.runtime.Runtime`
from a :class:`RuntimePool` - one runtime (hence one store connection) is
used by one thread at a time - and ``generate`` holds a per-table lock
(:class:`TableLocks`) around the whole load -> reconcile -> apply pass.
Requests for one table are therefore serialised inside a process and never
race; across processes or hosts (several servers, Lambda instances) the
store's optimistic locking catches the race and the pipeline retries.

Fleet liveness (payloads with a ``host``): a host that has not posted for
``lease`` seconds is dead and its containers leave every config rendered here
(they stay stored and return when it posts again).  ``cosmos serve`` judges on
its own monotonic clock, in memory (``liveness="process"``); the Lambda handler,
whose instances share no memory, records each post in the store's host record
(counter + the handler's wall-clock time) and judges by the handler's wall clock
(``liveness="store"``): only the service's own clock is ever compared with itself.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cosmos_core import metrics, payload, pipeline
from cosmos_core.errors import (
    CosmosError,
    StoreError,
    UnknownNameError,
    ValidationError,
)
from cosmos_core.logs import get_logger
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings

log = get_logger("cosmos.server")

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"

#: path -> allowed methods; HEAD is answered like GET.
ROUTES: Mapping[str, tuple[str, ...]] = {
    "/generate": ("POST",),
    "/cosmonaut": ("POST",),
    "/healthz": ("GET", "HEAD"),
    "/status": ("GET", "HEAD"),
}


@dataclass(frozen=True)
class Reply:
    """A response, ready for any front end."""

    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def all_headers(self) -> dict[str, str]:
        """``headers`` plus ``Content-Type``."""
        return {"Content-Type": self.content_type, **self.headers}


def json_reply(status: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
    body = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return Reply(status, body.encode(), JSON_TYPE, dict(headers or {}))


def error_reply(status: int, message: str, field: str | None = None, headers: Mapping[str, str] | None = None) -> Reply:
    """``{"error": message, "field": field}`` - ``field`` names the bad input, if any."""
    return json_reply(status, {"error": message, "field": field}, headers)


def unauthorized() -> Reply:
    return error_reply(401, "missing or wrong bearer token", "Authorization", {"WWW-Authenticate": 'Bearer realm="cosmos"'})


def unsupported_media_type() -> Reply:
    return error_reply(415, "Content-Type must be application/json", "Content-Type")


def too_large(limit: int) -> Reply:
    return error_reply(413, f"request body is over the limit of {limit} bytes", "body")


def head_too_large(limit: int) -> Reply:
    """431: the request line and headers are over ``max_head`` bytes."""
    return error_reply(431, f"request head is over the limit of {limit} bytes", "headers")


def busy(limit: int, retry_after: int = 1) -> Reply:
    """503 with ``Retry-After``: ``limit`` requests are already in flight."""
    return error_reply(503, f"server busy: {limit} requests in flight; retry after {retry_after} s",
                       headers={"Retry-After": str(retry_after)})


def route_error(method: str, path: str) -> Reply | None:
    """404 for an unknown path, 405 (with ``Allow``) for a wrong method, else ``None``."""
    allowed = ROUTES.get(path)
    if allowed is None:
        return error_reply(404, f"no route {path!r}; try POST /generate, POST /cosmonaut, GET /healthz or GET /status")
    if method.upper() not in allowed:
        return error_reply(405, f"{method} is not allowed on {path}", headers={"Allow": ", ".join(allowed)})
    return None


def bearer_ok(expected: str | None, authorization: str | None) -> bool:
    """True when no token is required, or ``authorization`` is ``Bearer <expected>``.

    The token comparison takes constant time (:func:`hmac.compare_digest`).
    """
    if not expected:
        return True
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        token = ""
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def json_media_type(content_type: str | None) -> bool:
    """``application/json`` (any parameters) or an ``application/*+json`` type."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == JSON_TYPE or (media.startswith("application/") and media.endswith("+json"))


def declared_length_over(content_length: str | None, limit: int) -> bool:
    """True when a ``Content-Length`` header already announces a body over ``limit``.

    Only a shortcut: front ends still count the bytes they actually read.
    """
    try:
        return content_length is not None and int(content_length) > limit
    except ValueError:
        return False


#: What the original Cosmonaut's shell step would mangle, written as JSON
#: escapes that its ``echo -e`` turns back into the same characters: double
#: quotes (it deletes every ``"``), white space (its unquoted ``echo -e $text``
#: splits words and joins them with single spaces), glob characters (that
#: unquoted expansion would match them against file names), and backslashes.
_COSMONAUT_ESCAPES = {
    **{code: f"\\u{code:04X}" for code in [*range(0x20), 0x7F]},
    ord("\n"): "\\n", ord("\t"): "\\t", ord("\\"): "\\\\",
    **{ord(c): f"\\u{ord(c):04X}" for c in ' "*?['},
}


def cosmonaut_string(config: str) -> bytes:
    """``config`` as one JSON string that survives the original Cosmonaut client byte for byte.

    That client (a shell step) stops when the answer contains the word
    ``error``, deletes every double quote, and writes ``echo -e $text``
    (unquoted) as ``haproxy.cfg``.  The body is valid JSON whose value is
    exactly ``config``; it contains no ``"`` but its enclosing pair, no white
    space, no glob character and never the word ``error`` (its ``e`` is sent
    as ``\\u0065``, which both JSON and bash's ``echo -e`` decode), so those
    steps write ``config`` plus a final newline.
    """
    pieces = (piece.translate(_COSMONAUT_ESCAPES) for piece in config.split("error"))
    return ('"' + "\\u0065rror".join(pieces) + '"').encode()


class TableLocks:
    """A bounded set of locks; one table always maps to the same lock.

    Striping keeps memory bounded whatever table names clients send; two tables
    sharing a stripe merely wait for each other.
    """

    def __init__(self, stripes: int = 64) -> None:
        self._locks = tuple(threading.Lock() for _ in range(stripes))

    def __call__(self, table: str) -> threading.Lock:
        return self._locks[hash(table) % len(self._locks)]


class RuntimePool:
    """Runtimes lent to one thread at a time, created on demand and reused.

    A store connection is therefore never used by two threads at once (the
    SQLite store keeps one connection per runtime), and the plugin registries
    are discovered once and shared.
    """

    def __init__(self, settings: Settings, plugins: Plugins) -> None:
        self.settings = settings
        self.plugins = plugins
        self._idle: deque[Runtime] = deque()
        self._all: list[Runtime] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[Runtime]:
        try:
            runtime = self._idle.pop()
        except IndexError:
            runtime = Runtime(self.settings, self.plugins)
            if hasattr(runtime.emitter, "use_maps"):  # the answer is one text file: route by ACLs, no map files
                runtime.emitter.use_maps = False
            with self._lock:
                self._all.append(runtime)
        try:
            yield runtime
        finally:
            self._idle.append(runtime)

    def close(self) -> None:
        with self._lock:
            runtimes, self._all = self._all, []
        self._idle.clear()
        for runtime in runtimes:
            runtime.close()


#: Payloads parsed at once (see :attr:`Api.parsing`).
PARSE_SLOTS = 2


class Api:
    """The three endpoints as synchronous methods (call them from worker threads)."""

    def __init__(self, settings: Settings, plugins: Plugins | None = None, liveness: str = "process",
                 clock: Any = None) -> None:
        """``liveness``: ``"process"`` (hosts judged in memory on ``clock``, default ``time.monotonic``)
        or ``"store"`` (posts recorded in the store's host records, judged on ``clock``, default
        ``time.time``); see the module docstring.  A lease that is not a positive number of seconds
        is a :class:`ValidationError` naming ``lease`` (or ``heartbeat``), as ``cosmos watch`` checks
        them: the heartbeat positive, the lease longer than it."""
        from cosmos_core.fleet import checked_timing

        if liveness not in ("process", "store"):
            raise ValueError(f"liveness must be 'process' or 'store', not {liveness!r}")
        self.settings = settings
        self.liveness = liveness
        _, self.lease = checked_timing(settings.heartbeat, settings.lease)
        self.clock = clock or (time.monotonic if liveness == "process" else time.time)
        self._posted: dict[str, Any] = {}  # table -> PostedHosts (liveness="process")
        self._posted_lock = threading.Lock()
        from cosmos_core.fleet import Verdicts

        self._verdicts = Verdicts(get_logger("cosmos.fleet"))  # host_dead / host_alive, once per change
        self.plugins = plugins if plugins is not None else Plugins.discover()
        self.pool = RuntimePool(settings, self.plugins)
        self.locks = TableLocks()
        #: Parsing is pure CPU under the GIL: a few threads at a time keep up
        #: the throughput, more only starve the event loop (and /healthz).
        self.parsing = threading.BoundedSemaphore(PARSE_SLOTS)

    @property
    def max_body(self) -> int:
        return self.settings.max_body

    @property
    def body_timeout(self) -> float:
        """Seconds a request has, once its head is in, to send its whole body."""
        return self.settings.body_timeout

    @property
    def max_head(self) -> int:
        return self.settings.max_head

    @property
    def max_in_flight(self) -> int:
        return self.settings.max_in_flight

    def check(self) -> None:
        """Build the configured store and emitter now, so a bad setting fails at start-up.

        Raises :class:`ValidationError` / :class:`UnknownNameError` (exit 2).
        The store is not contacted: an unreachable store is a 503, not a
        start-up failure.
        """
        with self.pool.borrow() as runtime:
            runtime.store  # noqa: B018 - resolves the scheme and builds the store
            runtime.emitter  # noqa: B018

    def authorized(self, authorization: str | None) -> bool:
        return bearer_ok(self.settings.api_token, authorization)

    def generate(self, body: bytes, path: str = "/generate") -> Reply:
        """Parse a payload, run the pipeline under the table's lock, return the config.

        ``POST /generate`` answers the config as ``text/plain``;
        ``POST /cosmonaut`` as one JSON string for the original Cosmonaut
        client (:func:`cosmonaut_string`).  Errors are JSON either way.
        """
        try:
            with self.parsing:
                snapshot = payload.loads(body)
            table = snapshot.table or self.settings.table
            with self.locks(table), self.pool.borrow() as runtime:
                started = time.perf_counter()
                runtime.liveness = self._judge(runtime, table, snapshot.host_id)
                try:
                    result = pipeline.generate(runtime, snapshot)
                finally:
                    runtime.liveness = None
                self._record(runtime, table, snapshot.host_id, result.services)
                seconds = time.perf_counter() - started
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON reply
            metrics.pass_failed(exc)
            return self._failure(exc, "generate")
        metrics.pass_succeeded(result.table, result.services, seconds)
        if path == "/cosmonaut":
            return Reply(200, cosmonaut_string(result.config), JSON_TYPE)
        return Reply(200, result.config.encode(), TEXT_TYPE)

    def _judge(self, runtime: Runtime, table: str, host_id: str | None) -> Any:
        """The dead hosts for rendering this request (``None``: not a fleet request, nothing judged)."""
        from cosmos_core.fleet import DeadHosts, FleetStore, PostedHosts, stale_hosts

        if host_id is None:
            return None
        if self.liveness == "process":
            with self._posted_lock:
                posted = self._posted.setdefault(table, PostedHosts(self.lease, self.clock))
            dead, age = posted.dead(me=host_id), posted.age
        else:
            store = runtime.store
            if not isinstance(store, FleetStore):
                return None
            view, now = store.fleet(table), self.clock()
            dead = stale_hosts(view, now, self.lease, me=host_id)

            def age(host: str) -> float | None:
                at = view.hosts[host].at
                return None if at is None else now - at
        self._verdicts.update(table, dead, self.lease, age)
        return DeadHosts(dead)

    def _record(self, runtime: Runtime, table: str, host_id: str | None, services: Any) -> None:
        """After a successful pass: note ``host_id``'s post (and, in memory, the hosts stored)."""
        from cosmos_core.fleet import FleetStore

        if host_id is None:
            return
        if self.liveness == "process":
            posted = self._posted[table]
            posted.seen(c.host_id for s in services for c in s.containers)
            posted.posted(host_id)
            metrics.set_live_hosts(self.live_hosts())
        elif isinstance(runtime.store, FleetStore):
            runtime.store.heartbeat(table, host_id, None, at=self.clock())

    def live_hosts(self) -> int:
        """Hosts of any table that posted within the lease, as this process saw them (``cosmos_live_hosts``).

        In memory (``liveness="process"``); ``0`` with ``liveness="store"`` (the Lambda handler
        serves no metrics)."""
        with self._posted_lock:
            tables = list(self._posted.values())
        return len(frozenset().union(*(posted.live() for posted in tables)))

    def healthz(self) -> Reply:
        """200 when the store answers a ping, 503 when it does not."""
        try:
            with self.pool.borrow() as runtime:
                runtime.store.ping()
                store = runtime.store_url.safe
        except Exception as exc:  # noqa: BLE001
            return self._failure(exc, "healthz")
        return json_reply(200, {"status": "ok", "store": store})

    def status(self) -> Reply:
        """The stored services of every table (``cosmos status --json``)."""
        from cosmos_core.status import collect

        try:
            with self.pool.borrow() as runtime:
                report = collect(runtime)
        except Exception as exc:  # noqa: BLE001
            return self._failure(exc, "status")
        return json_reply(200, report)

    def close(self) -> None:
        self.pool.close()

    def _failure(self, exc: Exception, endpoint: str) -> Reply:
        """Map an exception to its reply: 400 bad input, 503 store down, 500 otherwise."""
        reply = failure_reply(exc)
        if isinstance(exc, CosmosError):
            log.warning("request_failed", endpoint=endpoint, status=reply.status, error=str(exc))
        else:
            log.error("request_crashed", endpoint=endpoint, status=reply.status, error=repr(exc),
                      traceback=traceback.format_exc())
        return reply


#: An unknown name in these payload fields (a candidate's configMode) is the
#: client's error (400); elsewhere (a stored service's mode) it is the server's.
PAYLOAD_FIELDS = ("candidates", "candidateServices")


def failure_reply(exc: Exception) -> Reply:
    """The reply for an exception raised while serving a request."""
    if isinstance(exc, ValidationError):
        return error_reply(400, str(exc), exc.field)
    if isinstance(exc, UnknownNameError) and (exc.field or "").startswith(PAYLOAD_FIELDS):
        return error_reply(400, str(exc), exc.field)
    if isinstance(exc, StoreError):
        return error_reply(503, f"store unavailable: {exc}")
    if isinstance(exc, CosmosError):
        return error_reply(500, str(exc))
    return error_reply(500, f"internal error ({type(exc).__name__}); see the server log")
