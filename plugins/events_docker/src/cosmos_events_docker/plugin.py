"""Registers the ``docker`` event source (the docker SDK is imported only when it runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cosmos_core import Provides, Setting, hookimpl
from cosmos_core.settings import Settings

if TYPE_CHECKING:
    from cosmos_events_docker.source import DockerSource


SECTION = "docker"
NAME_FILTER = Setting("name_filter", str, None, "only containers whose name contains this keyword", section=SECTION)
DEBOUNCE_QUIET = Setting("debounce_quiet", float, 0.1, "accepted and checked; since issue 11 the docker source "
                         "waits for no quiet period (the older quiet-period rule reads it)", section=SECTION)
DEBOUNCE_MAX_WAIT = Setting("debounce_max_wait", float, 1.0, "accepted and checked (as debounce_quiet)",
                            section=SECTION)
DEBOUNCE_INTERVAL = Setting("debounce_interval", float, 0.25, "least time between two passes, in seconds; a change "
                            "after a longer idle spell is acted on at once", section=SECTION)
DEBOUNCE_STORM_CONTAINERS = Setting("debounce_storm_containers", int, 4,
                                    "this many new services within 0.6 s is a storm (0: off)", section=SECTION)
DEBOUNCE_STORM_QUIET = Setting("debounce_storm_quiet", float, 0.5, "a storm's batch closes after this long without "
                               "a new service, in seconds", section=SECTION)
DEBOUNCE_STORM_MAX_WAIT = Setting("debounce_storm_max_wait", float, 8.0, "longest wait during a storm, in seconds",
                                  section=SECTION)
SETTINGS = (NAME_FILTER, DEBOUNCE_QUIET, DEBOUNCE_MAX_WAIT, DEBOUNCE_INTERVAL, DEBOUNCE_STORM_CONTAINERS, DEBOUNCE_STORM_QUIET,
            DEBOUNCE_STORM_MAX_WAIT)


def make_source(settings: Settings) -> DockerSource:
    from cosmos_events_docker.source import DockerSource

    return DockerSource(settings)


@hookimpl
def cosmos_event_sources() -> list[Provides]:
    return [Provides("docker", make_source, "the labelled containers of a Docker host (events + full resync)")]


@hookimpl
def cosmos_settings() -> list[Setting]:
    return list(SETTINGS)
