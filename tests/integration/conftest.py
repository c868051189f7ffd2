"""Session fixtures for the integration tests: real Docker Engine, HAProxy and dynalite.

A missing dependency skips the tests locally, but fails them when ``CI=true``:
integration tests must never pass silently in CI. Run
``scripts/install-test-deps.sh`` to install and start everything.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from tests.support.dynalite import Dynalite, DynaliteUnavailable, start_dynalite
from tests.support.images import (
    build_backend_image,
    build_haproxy_image,
    remove_container,
    remove_test_containers,
    run_test_container,
)

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``integration`` marker."""
    config.addinivalue_line(
        "markers",
        "integration: needs real Docker Engine, HAProxy and dynalite",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when running in CI (``CI=true``)."""
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{reason} (an error as CI=true; run scripts/install-test-deps.sh)",
            pytrace=False,
        )
    pytest.skip(reason)


def _connect_docker() -> DockerClient:
    """Return a client for a reachable engine, or skip/fail via :func:`unavailable`."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception as error:  # ImportError, DockerException or a requests error
        problem = f"Docker Engine unreachable: {error}"
    unavailable(problem)  # outside the except block: no chained traceback in the report


@pytest.fixture(scope="session")
def docker_client() -> Iterator[DockerClient]:
    """A Docker SDK client; removes this session's test containers at the end."""
    client = _connect_docker()
    yield client
    remove_test_containers(client)
    client.close()


@pytest.fixture(scope="session")
def haproxy_image(docker_client: DockerClient) -> str:
    """Tag of the FROM-scratch HAProxy image (built once, cached by content)."""
    return build_haproxy_image(docker_client)


@pytest.fixture(scope="session")
def backend_image(docker_client: DockerClient) -> str:
    """Tag of the FROM-scratch busybox httpd backend image (port 8080)."""
    return build_backend_image(docker_client)


@pytest.fixture
def start_container(docker_client: DockerClient) -> Iterator[Callable[..., Container]]:
    """Factory ``start_container(image, **run_kwargs)``; removes them after the test."""
    started: list[Container] = []

    def start(image: str, **kwargs: Any) -> Container:
        container = run_test_container(docker_client, image, **kwargs)
        started.append(container)
        return container

    yield start
    for container in started:
        remove_container(container)


def _start_dynalite() -> Dynalite:
    """Start dynalite, or skip/fail via :func:`unavailable` if node or it is missing."""
    try:
        return start_dynalite()
    except DynaliteUnavailable as error:
        problem = str(error)
    unavailable(problem)


@pytest.fixture(scope="session")
def dynalite() -> Iterator[Dynalite]:
    """One in-memory dynalite server for the whole session."""
    with _start_dynalite() as server:
        yield server


@pytest.fixture
def dynalite_env(dynalite: Dynalite, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point boto3 at the session dynalite via the environment; return the variables."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in dynalite.env.items():
        monkeypatch.setenv(name, value)
    return dynalite.env


@pytest.fixture(scope="session")
def haproxy_bin() -> str:
    """Path of the host's haproxy (for ``haproxy -c`` checks and host-mode runs)."""
    path = shutil.which("haproxy") or shutil.which(
        "haproxy", path="/usr/sbin:/usr/local/sbin"
    )
    if path is None:
        unavailable("haproxy not installed on the host")
    return path
