"""Registers the ``remote`` pass strategy and its settings; the client is imported only when it is chosen.

``--emitter remote`` / ``emitter = "remote"`` selects it (see :mod:`cosmos_core.passes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosmos_core import Provides, Setting, hookimpl

if TYPE_CHECKING:
    from cosmos_core.passes import RemotePass
    from cosmos_core.runtime import Runtime

SECTION = "remote"
REMOTE_URL = Setting("remote_url", str, None, "the Cosmos to ask, e.g. http://cosmos.internal:8080", section=SECTION)
REMOTE_TIMEOUT = Setting("remote_timeout", float, 5.0, "per-request timeout in seconds", section=SECTION)
REMOTE_RETRIES = Setting("remote_retries", int, 3, "retries of a request that failed for a transient reason",
                         section=SECTION)
REMOTE_BACKOFF = Setting("remote_backoff", float, 0.2, "first retry delay in seconds (doubles, capped at 5 s)",
                         section=SECTION, key="backoff")
SETTINGS = (REMOTE_URL, REMOTE_TIMEOUT, REMOTE_RETRIES, REMOTE_BACKOFF)


def make_pass(runtime: Runtime) -> RemotePass:
    from cosmos_core.passes import RemotePass
    from cosmos_emit_remote.client import RemoteCosmos

    return RemotePass(RemoteCosmos.from_settings(runtime.settings), runtime.settings.table)


@hookimpl
def cosmos_passes() -> list[Provides[RemotePass]]:
    return [Provides("remote", make_pass, "ask a Cosmos server at remote_url for the config")]


@hookimpl
def cosmos_settings() -> list[Setting]:
    return list(SETTINGS)
