"""The ``payload`` event source: one original Cosmos request from a file or stdin."""

from __future__ import annotations

import sys
from typing import Iterator

from cosmos_core import payload
from cosmos_core.contracts import Provides
from cosmos_core.errors import ValidationError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.model import Snapshot
from cosmos_core.settings import Settings


class PayloadSource:
    """Yields the one snapshot read from ``path`` (``-`` is stdin), then ends."""

    one_shot = True  # the agent exits after it: no fleet heartbeats (see EventSource)

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> bytes:
        if self.path == "-":
            return sys.stdin.buffer.read()
        try:
            with open(self.path, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise ValidationError("payload", self.path, f"cannot be read ({exc.strerror})") from None

    def snapshots(self) -> Iterator[Snapshot]:
        yield payload.loads(self.read())

    def close(self) -> None:
        return None


def make_source(settings: Settings) -> PayloadSource:
    return PayloadSource(settings.payload)


@hookimpl
def cosmos_event_sources() -> list[Provides]:
    return [Provides("payload", make_source, "an original Cosmos request from a file or stdin")]
