"""Registers the ``docker-exec`` reloader (the docker SDK is imported only when it runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosmos_core import Provides, hookimpl
from cosmos_core.settings import Settings

if TYPE_CHECKING:
    from cosmos_reload_docker_exec.reloader import DockerExecReloader


def make_reloader(settings: Settings) -> DockerExecReloader:
    from cosmos_reload_docker_exec.reloader import DockerExecReloader

    return DockerExecReloader(settings)


@hookimpl
def cosmos_reloaders() -> list[Provides]:
    return [Provides("docker-exec", make_reloader, "copy, validate (haproxy -c) and reload inside the HAProxy container")]
