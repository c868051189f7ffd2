"""Connection limits of ``cosmos serve``, enforced in the HTTP protocol, before the app sees a request.

uvicorn reads a request head of any size and keeps a connection that never
finishes its request open for good.  :func:`guarded_protocol` wraps uvicorn's
httptools protocol class so that, per server:

* **request heads are bounded** (``max_head`` bytes: request line plus
  headers).  A head over the limit is answered ``431`` as soon as the limit is
  passed, while it arrives; the rest is read and dropped (up to
  :data:`DISCARD_MAX` bytes or :data:`LINGER_S`) so the client sees the answer
  rather than a reset, and never buffered;
* **an idle connection must complete a request head within ``head_timeout``
  seconds** (from when it opens, or from its previous response); otherwise it
  is closed.  A connection with a request in progress is never timed out;
* **open connections are capped** at ``max_connections`` (kept below the
  open-files limit by the caller).  A connection arriving at the cap evicts
  the idle connection that has waited longest; when every connection has a
  request in progress, the newcomer is closed.  So idle or half-sent
  connections cannot lock real clients out, and ``accept`` never runs out of
  file descriptors.

uvicorn is imported by :func:`guarded_protocol` only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from cosmos_core.logs import get_logger
from cosmos_core.server.api import head_too_large

log = get_logger("cosmos.server")

#: After a 431, at most this many further bytes are read and dropped ...
DISCARD_MAX = 1024 * 1024
#: ... for at most this long, before the connection is closed.
LINGER_S = 2.0
#: File descriptors kept free for everything but client connections (store
#: files, logs, the event loop's own); see :func:`connection_cap`.
FD_RESERVE = 64


@dataclass(frozen=True)
class Limits:
    """The protocol-level limits of one server."""

    max_head: int = 65_536
    head_timeout: float = 5.0
    max_connections: int = 1000


def connection_cap(wanted: int, reserve: int = FD_RESERVE) -> int:
    """``wanted``, lowered to the soft open-files limit less ``reserve`` (at least 1)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - reserve))


@dataclass
class Guard:
    """Shared state of one server's connections: which are open, which wait idle (oldest first)."""

    limits: Limits
    open: set[Any] = field(default_factory=set)
    idle: dict[Any, None] = field(default_factory=dict)  # insertion order = waiting since
    evicted: int = 0
    refused: int = 0

    def admit(self, connection: Any) -> bool:
        """Make room for ``connection``; False when every open connection is busy."""
        if len(self.open) >= self.limits.max_connections:
            victim = next(iter(self.idle), None)
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            victim.drop("evicted")
        self.open.add(connection)
        return True

    def wait(self, connection: Any) -> None:
        self.idle.pop(connection, None)
        self.idle[connection] = None

    def busy(self, connection: Any) -> None:
        self.idle.pop(connection, None)

    def forget(self, connection: Any) -> None:
        self.open.discard(connection)
        self.idle.pop(connection, None)


def too_large_response(limit: int) -> bytes:
    """A complete ``431`` response (:func:`~cosmos_core.server.api.head_too_large`, ``Connection: close``)."""
    reply = head_too_large(limit)
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: " + reply.content_type.encode() + b"\r\n"
        b"connection: close\r\n"
        b"content-length: " + str(len(reply.body)).encode() + b"\r\n\r\n" + reply.body
    )


class HeadTooLarge(Exception):
    """Raised from a parser callback: the request head passed ``max_head``."""


def guarded_protocol(guard: Guard) -> type:
    """uvicorn's httptools protocol class with ``guard``'s limits (pass it as ``Config(http=...)``)."""
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    limits = guard.limits

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _admitted = False
        _head_timer: asyncio.TimerHandle | None = None
        _counting = True  # between requests: incoming bytes belong to a request head
        _head_bytes = 0  # bytes received since the current head began (bounds the buffering)
        _head_size = 0  # bytes of request line and headers parsed so far (exact)
        _discarding = -1  # >= 0 after a 431: bytes dropped since

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if not guard.admit(self):
                transport.abort()
                return
            self._admitted = True
            super().connection_made(transport)
            self._idle()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._admitted:
                return
            guard.forget(self)
            self._cancel_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._discarding >= 0:
                self._discarding += len(data)
                if self._discarding > DISCARD_MAX:
                    self.transport.close()
                return
            self._unset_keepalive_if_required()
            # Count a chunk only when it lies within one head, start to end: a
            # chunk that ends a body or a head is not all head.  The exact
            # count of the parsed head (on_url, on_header) covers the rest, so
            # at most one read's worth over max_head is ever buffered.
            within_head = self._counting
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, HeadTooLarge):
                    self._refuse_head()
                    return
                self.send_400_response("Invalid HTTP request received.")
                return
            except httptools.HttpParserUpgrade:  # as uvicorn does
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            if within_head and self._counting:
                self._head_bytes += len(data)
                if self._head_bytes > limits.max_head:
                    self._refuse_head()

        # parser callbacks
        def on_message_begin(self) -> None:
            self._head_size = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._grow(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._grow(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._counting = False
            self._head_bytes = 0
            self._cancel_timer()
            guard.busy(self)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._counting = True

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._idle()

        # the limits
        def drop(self, reason: str) -> None:
            """Close this idle connection (head timeout, eviction)."""
            log.debug("connection_dropped", reason=reason, client=_peer(self.client))
            guard.busy(self)
            self._cancel_timer()
            self.transport.close()

        def _grow(self, size: int) -> None:
            self._head_size += size
            if self._head_size > limits.max_head:
                raise HeadTooLarge

        def _idle(self) -> None:
            guard.wait(self)
            self._cancel_timer()
            self._head_timer = self.loop.call_later(limits.head_timeout, self.drop, "head_timeout")

        def _cancel_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _refuse_head(self) -> None:
            """Answer 431, then read and drop what still comes for a while, and close."""
            log.warning("request_head_too_large", limit=limits.max_head, client=_peer(self.client))
            guard.busy(self)
            self._cancel_timer()
            self._discarding = 0
            self.transport.write(too_large_response(limits.max_head))
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)

    return GuardedHttpToolsProtocol


def _peer(client: tuple[str, int] | None) -> str | None:
    return f"{client[0]}:{client[1]}" if client else None
