"""Registers the ``docker`` event source (the docker SDK is imported only when it runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosmos_core import Provides, hookimpl
from cosmos_core.settings import Settings

if TYPE_CHECKING:
    from cosmos_events_docker.source import DockerSource


def make_source(settings: Settings) -> DockerSource:
    from cosmos_events_docker.source import DockerSource

    return DockerSource(settings)


@hookimpl
def cosmos_event_sources() -> list[Provides]:
    return [Provides("docker", make_source, "the labelled containers of a Docker host (events + full resync)")]
