"""The Starlette ASGI app behind ``cosmos serve``.

A thin adapter: it checks the bearer token (pure ASGI middleware, before any
routing, so every request needs it), the content type and the body size while
reading, then runs the synchronous :class:`~cosmos_core.server.api.Api` in
Starlette's worker-thread pool and sends back its :class:`Reply`.  Routing
errors (404/405) get the same JSON shape as every other error.

Starlette is imported inside :func:`create_app`, so importing this module
stays cheap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from cosmos_core.logs import get_logger
from cosmos_core.server.api import (
    ROUTES,
    Api,
    Reply,
    busy,
    declared_length_over,
    error_reply,
    json_media_type,
    route_error,
    too_large,
    unauthorized,
    unsupported_media_type,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send



#: Worker threads reserved for ``GET /healthz``.
HEALTH_THREADS = 4

#: How much of an oversized body is still read (and dropped) before the 413 is
#: sent: closing a socket with unread data makes the kernel send a reset, and
#: the client may then never see the 413.  Bigger bodies are cut off at once.
DRAIN_MAX = 16 * 1024 * 1024


class BodyTooLarge(Exception):
    """The request body is over the limit."""


class BodyTimeout(Exception):
    """The request body did not arrive in time."""


class BodyIncomplete(Exception):
    """The client went away before sending the whole body."""


def to_response(reply: Reply) -> Response:
    from starlette.responses import Response

    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers), media_type=reply.content_type)


async def read_limited(receive: Receive, content_length: str | None, limit: int,
                       timeout: float | None = None) -> bytes:
    """The request body, counted as it streams in and never buffered past ``limit``.

    ``Content-Length`` is only a shortcut (a chunked or lying request is
    counted too).  An oversized body is read to its end and dropped, up to
    :data:`DRAIN_MAX` bytes, then :class:`BodyTooLarge` is raised.  A body
    not complete ``timeout`` seconds after reading began raises
    :class:`BodyTimeout`, so a stalled client cannot hold a request slot.
    """
    import asyncio

    if declared_length_over(content_length, limit + DRAIN_MAX):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        try:
            message = await (receive() if deadline is None
                             else asyncio.wait_for(receive(), max(0.0, deadline - loop.time())))
        except asyncio.TimeoutError:
            raise BodyTimeout from None
        if message["type"] != "http.request":
            raise BodyIncomplete
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False) or size > limit + DRAIN_MAX:
            break
    if size > limit:
        raise BodyTooLarge
    return b"".join(chunks)


class InFlightLimit:
    """Pure ASGI middleware: past ``limit`` requests in flight, 503 with ``Retry-After``.

    ``GET /healthz`` is never counted nor refused, so a load balancer keeps
    seeing a healthy server under any burst; every other request counts from
    the moment its head is parsed until its response is sent (the body is not
    read when refused).
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ("/healthz",)) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await to_response(busy(self.limit))(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BearerAuth:
    """Pure ASGI middleware: 401 for any HTTP request without the right token."""

    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.api.authorized(_header(scope, b"authorization")):
            await to_response(unauthorized())(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def create_app(api: Api) -> Starlette:
    """The ASGI app for ``api``; the app closes ``api`` when it shuts down."""
    import anyio
    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Route

    async def generate(request: Request) -> Response:
        if not json_media_type(request.headers.get("content-type")):
            return to_response(unsupported_media_type())
        try:
            body = await read_limited(request.receive, request.headers.get("content-length"), api.max_body,
                                      api.body_timeout)
        except BodyTooLarge:
            return to_response(too_large(api.max_body))
        except BodyTimeout:
            return to_response(error_reply(408, f"the request body did not arrive within {api.body_timeout:g} s",
                                           "body", {"Connection": "close"}))
        except BodyIncomplete:
            return to_response(error_reply(400, "the request body ended early", "body"))
        return to_response(await run_in_threadpool(api.generate, body, request.url.path))

    health_threads: list[anyio.CapacityLimiter] = []

    async def healthz(request: Request) -> Response:
        # Threads of its own: a health check never queues behind heavy requests.
        if not health_threads:
            health_threads.append(anyio.CapacityLimiter(HEALTH_THREADS))
        return to_response(await anyio.to_thread.run_sync(api.healthz, limiter=health_threads[0]))

    async def status(request: Request) -> Response:
        return to_response(await run_in_threadpool(api.status))

    from cosmos_core import metrics

    metrics.enable()

    async def metrics_page(request: Request) -> Response:
        from starlette.responses import Response

        metrics.set_live_hosts(api.live_hosts())  # judged now: a host may have gone silent since the last post
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reply = route_error(request.method, request.url.path)
        return to_response(reply or error_reply(exc.status_code, str(exc.detail)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            api.close()
            get_logger("cosmos.server").info("stopped")

    handlers = {"/generate": generate, "/cosmonaut": generate, "/healthz": healthz, "/status": status}
    routes = [Route(path, handlers[path], methods=list(methods)) for path, methods in ROUTES.items()]
    routes.append(Route("/metrics", metrics_page, methods=["GET", "HEAD"]))  # ops: Prometheus (not on Lambda)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BearerAuth, api=api), Middleware(InFlightLimit, limit=api.max_in_flight)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # /generate/ is a 404, as on Lambda
    return app
