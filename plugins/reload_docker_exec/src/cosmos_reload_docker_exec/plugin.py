"""Registers the ``docker-exec`` reloader (the docker SDK is imported only when it runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import replace

from cosmos_core import Provides, Setting, hookimpl
from cosmos_core.builtin.host_reloader import HAPROXY_BIN, HAPROXY_CONFIG, MASTER_SOCKET, RELOAD_COMMAND
from cosmos_core.settings import Settings

if TYPE_CHECKING:
    from cosmos_reload_docker_exec.reloader import DockerExecReloader


SECTION = "docker-exec"
HAPROXY_CONTAINER = Setting("haproxy_container", str, "haproxy", "the HAProxy container (name or id)",
                            section=SECTION)
#: Shared with the built-in host reloader (same name, type and default): one value serves both.
SHARED = (
    replace(HAPROXY_CONFIG, section=SECTION),
    replace(HAPROXY_BIN, section=SECTION),
    replace(RELOAD_COMMAND, section=SECTION,
            help="how to reload (docker-exec: run with sh -c in the container; default: SIGUSR2 to PID 1)"),
    replace(MASTER_SOCKET, section=SECTION,
            help="HAProxy's master CLI inside the container (haproxy -W -S ipv4@127.0.0.1:PORT), reached with "
                 "docker exec + nc: cosmos status counts the live workers through it"),
)


def make_reloader(settings: Settings) -> DockerExecReloader:
    from cosmos_reload_docker_exec.reloader import DockerExecReloader

    return DockerExecReloader(settings)


@hookimpl
def cosmos_reloaders() -> list[Provides]:
    return [Provides("docker-exec", make_reloader, "copy, validate (haproxy -c) and reload inside the HAProxy container")]


@hookimpl
def cosmos_settings() -> list[Setting]:
    return [HAPROXY_CONTAINER, *SHARED]
