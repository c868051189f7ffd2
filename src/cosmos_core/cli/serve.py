"""``cosmos serve``: Cosmos as an HTTP service (``POST /generate``, ``GET /healthz``, ``GET /status``)."""

import ipaddress
import socket
import sys
from typing import Annotated, Optional

import typer

from cosmos_core.cli import common
from cosmos_core.errors import CosmosError, ValidationError
from cosmos_core.settings import Settings


SWITCH_INTERVAL_S = 0.0005


class ServeError(CosmosError):
    """The server could not start (missing extra, address in use)."""


def serve(
    ctx: typer.Context,
    host: Annotated[
        Optional[str], typer.Option("--host", help="Address to listen on.  [default: 127.0.0.1]", show_default=False)
    ] = None,
    port: Annotated[
        Optional[int],
        typer.Option("--port", help="TCP port; 0 picks a free one (logged at start).  [default: 8080]", show_default=False),
    ] = None,
    store: common.StoreOpt = None,
    token: Annotated[
        Optional[str],
        typer.Option(
            "--token",
            help="Require 'Authorization: Bearer TOKEN' on every request (prefer COSMOS_API_TOKEN: flags show in ps).",
            show_default=False,
        ),
    ] = None,
    max_body: Annotated[
        Optional[int],
        typer.Option("--max-body", help="Largest request body in bytes.  [default: 1048576]", show_default=False),
    ] = None,
    max_head: Annotated[
        Optional[int],
        typer.Option("--max-head", help="Largest request head (request line + headers) in bytes; "
                     "more is a 431.  [default: 65536]", show_default=False),
    ] = None,
    head_timeout: Annotated[
        Optional[float],
        typer.Option("--head-timeout", help="Seconds an idle connection has to send a complete request head.  "
                     "[default: 5.0]", show_default=False),
    ] = None,
    body_timeout: Annotated[
        Optional[float],
        typer.Option("--body-timeout", help="Seconds a request has, once its head is in, to send its whole body; "
                     "later is a 408 and the connection is closed.  [default: 10.0]", show_default=False),
    ] = None,
    max_connections: Annotated[
        Optional[int],
        typer.Option("--max-connections", help="Open connections at most (also kept below the open-files "
                     "limit); the longest-idle one makes room.  [default: 1000]", show_default=False),
    ] = None,
    max_in_flight: Annotated[
        Optional[int],
        typer.Option("--max-in-flight", help="Requests in flight at most (GET /healthz aside); more get 503 "
                     "with Retry-After.  [default: 16]", show_default=False),
    ] = None,
) -> None:
    """Serve the original Cosmos API: POST a payload to /generate, get the config back."""
    settings = common.settings(
        ctx, serve_host=host, serve_port=port, store=store, api_token=token, max_body=max_body,
        max_head=max_head, head_timeout=head_timeout, body_timeout=body_timeout, max_connections=max_connections, max_in_flight=max_in_flight,
    )
    with common.errors(settings.debug):
        check_limits(settings)
        try:
            import uvicorn

            from cosmos_core.server.app import create_app
            from cosmos_core.server.guard import Guard, Limits, connection_cap, guarded_protocol
        except ImportError as exc:
            raise ServeError(
                f"cosmos serve needs the 'serve' extra ({exc.name} is missing): pip install 'cosmos-core[serve]'"
            ) from None
        from cosmos_core.contracts import StoreURL
        from cosmos_core.logs import get_logger
        from cosmos_core import metrics
        from cosmos_core.server.api import Api

        metrics.enable()  # before the first store is built, so its calls are counted (GET /metrics)
        api = Api(settings)
        # The event loop shares the GIL with up to max_in_flight busy worker
        # threads; a shorter switch interval hands it back sooner, so /healthz
        # and new connections are answered under load (benchmarks/serve.md).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            api.check()
            sock = listen(settings.serve_host, settings.serve_port)
        except BaseException:
            api.close()
            raise
        limits = Limits(settings.max_head, settings.head_timeout, connection_cap(settings.max_connections))
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        get_logger("cosmos.server").info(
            "serving",
            url=f"http://{shown}:{bound_port}",
            port=bound_port,
            store=StoreURL.parse(settings.store).safe,
            auth=bool(settings.api_token),
            max_body=settings.max_body,
            max_head=limits.max_head,
            head_timeout=limits.head_timeout,
            max_connections=limits.max_connections,
            max_in_flight=settings.max_in_flight,
        )
        if exposed_without_token(settings.serve_host, settings.api_token):
            get_logger("cosmos.server").warning(
                "no_api_token", host=settings.serve_host,
                hint="anyone who reaches this address can change the routing; set COSMOS_API_TOKEN",
            )
        config = uvicorn.Config(
            create_app(api), http=guarded_protocol(Guard(limits)), ws="none",
            log_config=None, access_log=False, lifespan="on", server_header=False,
        )
        uvicorn.Server(config).run(sockets=[sock])


def check_limits(settings: Settings) -> None:
    """Each limit of ``cosmos serve`` must be positive (a one-line error naming the flag)."""
    for name in ("max_body", "max_head", "max_connections", "max_in_flight", "head_timeout", "body_timeout"):
        value = getattr(settings, name)
        if value <= 0:
            raise ValidationError(f"--{name.replace('_', '-')}", value, "must be greater than 0")


def exposed_without_token(host: str, token: str | None) -> bool:
    """True when listening beyond loopback with no bearer token required."""
    if token:
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() != "localhost"


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6), or a one-line error."""
    if not 0 <= port <= 65535:
        raise ValidationError("--port", port, "must be between 0 and 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that
    # say so, and without it Nagle + delayed ACKs add ~40 ms to every reply.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock
