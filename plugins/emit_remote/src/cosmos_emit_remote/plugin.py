"""Registers the ``remote`` emitter; the client module is imported only when it is chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosmos_core import Provides, hookimpl

if TYPE_CHECKING:
    from cosmos_core.settings import Settings
    from cosmos_emit_remote.client import RemoteCosmos


def make_emitter(settings: Settings) -> RemoteCosmos:
    from cosmos_emit_remote.client import RemoteCosmos

    return RemoteCosmos.from_settings(settings)


@hookimpl
def cosmos_emitters() -> list[Provides[RemoteCosmos]]:
    return [Provides("remote", make_emitter, "ask a Cosmos server at remote_url for the config")]
