"""The agent image end to end: build the real Dockerfile unchanged and route a labelled container through it.

There is no registry: the base image the Dockerfile names (``python:3.11-slim``)
is built FROM scratch out of the host's Python (:mod:`tests.support.python_image`),
the wheelhouse comes from ``pip wheel`` (as ``make image`` does), and the
Dockerfile and .dockerignore are used as they are in the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.integration.agent.conftest import ROOT, Env, url, wait_routed
from tests.support.images import container_ip, http_get, run_test_container, wait_http
from tests.support.python_image import build_python_base_image

if TYPE_CHECKING:
    from docker import DockerClient

AGENT_IMAGE = "cosmos-test/agent:latest"
PACKAGES = [".", "plugins/events_docker", "plugins/reload_docker_exec", "plugins/routing_host_path", "plugins/emit_remote"]
SOCKET = "/var/run/docker.sock"


@pytest.fixture(scope="session")
def agent_image(docker_client: DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the repository's Dockerfile (as `make image` does) on the stand-in base image."""
    build_python_base_image(docker_client)
    context = tmp_path_factory.mktemp("agent-image")
    wheels = context / "build" / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--wheel-dir",
                    str(wheels), *PACKAGES], cwd=ROOT, check=True, capture_output=True, timeout=600)
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copy(ROOT / name, context / name)
    docker_client.images.build(path=str(context), tag=AGENT_IMAGE, labels={"cosmos-test": "1"}, rm=True,
                               forcerm=True)
    return AGENT_IMAGE


def health(container) -> str:  # type: ignore[no-untyped-def]
    container.reload()
    return ((container.attrs.get("State") or {}).get("Health") or {}).get("Status", "")


def wait_health(container, status: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while health(container) != status:
        if time.monotonic() > deadline:
            raise TimeoutError(f"health {health(container)!r}, not {status!r}; logs:\n{container.logs().decode()[-3000:]}")
        time.sleep(0.2)


def test_the_agent_image_routes_a_labelled_container_as_a_non_root_user(
    env: Env, docker_client: DockerClient, agent_image: str, start_container: Callable[..., object]
) -> None:
    image = docker_client.images.get(agent_image)
    print(f"agent image {agent_image}: {image.attrs['Size'] / 1e6:.1f} MB")
    assert image.attrs["Config"]["User"] == "10001:0"
    assert image.attrs["Config"]["Healthcheck"]["Test"][0] == "CMD"
    proxy = env.haproxy()
    agent = run_test_container(
        docker_client, agent_image, name=f"{env.prefix}-agent", labels=env.labels(),
        environment={"COSMOS_HAPROXY_CONTAINER": f"{env.prefix}-haproxy", "COSMOS_NAME_FILTER": env.prefix},
        volumes={SOCKET: {"bind": SOCKET, "mode": "rw"}},
        group_add=[str(os.stat(SOCKET).st_gid)],  # the socket's group, so the agent need not be root
        # The image's own HEALTHCHECK command (empty test: inherited), checked every second here.
        healthcheck={"test": [], "interval": 1_000_000_000, "start_period": 1_000_000_000, "retries": 3},
    )
    env.started.append(agent)
    env.backend("web", service="web", predicate="web.test", port="8080", weight="10")
    try:
        assert wait_routed(url(proxy), "web.test", timeout=60) == f"{env.prefix}-web\n"
    except TimeoutError as error:
        raise AssertionError(f"{error}\nagent logs:\n{agent.logs().decode()[-3000:]}") from None
    wait_health(agent, "healthy")
    uid = agent.exec_run(["python", "-c", "import os; print(os.getuid(), os.getgid())"]).output.decode().split()
    assert uid == ["10001", "0"]
    metrics = wait_http(f"http://{container_ip(agent)}:9101/metrics").body
    assert "cosmos_passes_total" in metrics and "cosmos_reloads_total{result=\"reloaded\"}" in metrics
    logs = agent.logs().decode()
    assert '"event": "reload"' in logs and "Traceback" not in logs
    agent.stop(timeout=10)
    agent.reload()
    assert agent.attrs["State"]["ExitCode"] == 0  # SIGTERM stops it cleanly
    assert http_get(url(proxy), {"Host": "web.test"}).status == 200  # HAProxy keeps the last config
