"""Fixtures for the agent's end-to-end tests: a real dockerd, HAProxy container and `cosmos watch`.

Every container a test starts is named ``<prefix>-...`` with a prefix unique to
the test, carries ``cosmos-test=1`` plus ``cosmos-agent-test=<prefix>``, and the
agent runs with ``--name-filter <prefix>``, so it only routes this test's
containers even while other tests use the same engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.images import (
    BACKEND_PORT,
    container_ip,
    remove_container,
    run_test_container,
    wait_for_log,
)

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

ROOT = Path(__file__).resolve().parents[3]
COSMOS = [sys.executable, "-c", "from cosmos_core.cli import main; main()"]


@dataclass
class Env:
    """One test's namespace on the engine."""

    client: DockerClient
    prefix: str
    backend_image: str
    haproxy_image: str
    started: list[Container] = field(default_factory=list)

    def labels(self, **cosmos: str) -> dict[str, str]:
        return {"cosmos-agent-test": self.prefix, **{f"cosmos.{k}": v for k, v in cosmos.items()}}

    def backend(self, name: str, **cosmos: str) -> Container:
        """A busybox httpd named ``<prefix>-<name>`` (its page names it) with ``cosmos.*`` labels."""
        full = f"{self.prefix}-{name}"
        container = run_test_container(self.client, self.backend_image, name=full, hostname=full, labels=self.labels(**cosmos))
        self.started.append(container)
        return container

    def haproxy(self, name: str = "haproxy", command: list[str] | None = None) -> Container:
        """The HAProxy container (``command``: instead of the image's ``haproxy -W -db -f ...``)."""
        extra = {"command": command} if command else {}
        container = run_test_container(self.client, self.haproxy_image, name=f"{self.prefix}-{name}", labels=self.labels(),
                                       **extra)
        self.started.append(container)
        wait_for_log(container, "Loading success")
        return container

    def cleanup(self) -> None:
        for container in self.client.containers.list(all=True, filters={"label": f"cosmos-agent-test={self.prefix}"}):
            remove_container(container)


@dataclass
class Agent:
    """A ``cosmos watch`` subprocess logging JSON lines to a file."""

    argv: list[str]
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Agent:
        handle = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=handle, stderr=handle, env=self.env, cwd=self.log_path.parent)
        handle.close()
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if name is None or record.get("event") == name:
                found.append(record)
        return found

    def wait_event(self, name: str, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(name)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name!r} logged {len(found)}/{count} times; log:\n{self.log_path.read_text()[-4000:]}")
            time.sleep(0.05)


@pytest.fixture
def env(docker_client: DockerClient, backend_image: str, haproxy_image: str) -> Iterator[Env]:
    environment = Env(docker_client, f"cosmos-a4-{uuid.uuid4().hex[:8]}", backend_image, haproxy_image)
    yield environment
    environment.cleanup()


@pytest.fixture
def make_agent(tmp_path: Path, env: Env) -> Iterator[Callable[..., Agent]]:
    """``make_agent(*extra_args, docker_host=None, store=None, variables=None)``: a started agent.

    The store defaults to sqlite in ``tmp_path``; ``variables`` adds environment variables.
    """
    agents: list[Agent] = []

    def make(
        *extra: str, docker_host: str | None = None, store: str | None = None, variables: dict[str, str] | None = None
    ) -> Agent:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
        environ |= {"COSMOS_LOG_FORMAT": "json", "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONPATH": str(ROOT)}
        environ |= variables or {}
        if docker_host:
            environ["DOCKER_HOST"] = docker_host
        argv = [
            *COSMOS, "watch",
            "--store", store or f"sqlite://{tmp_path}/state.db",
            "--haproxy-container", f"{env.prefix}-haproxy",
            "--name-filter", env.prefix,
            *extra,
        ]
        agent = Agent(argv, tmp_path / f"agent-{len(agents)}.log", environ).start()
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.stop(signal.SIGKILL)


def url(container: Container, path: str = "/") -> str:
    return f"http://{container_ip(container)}{path}"


def backend_url(container: Container, path: str = "/") -> str:
    return f"http://{container_ip(container)}:{BACKEND_PORT}{path}"


def wait_routed(address: str, host: str | None = None, expect: str | None = None, timeout: float = 15.0) -> str:
    """Poll until HAProxy answers 200 from a backend (not its start-up page); return the body.

    With ``expect``, wait for exactly that body.
    """
    from tests.support.images import http_get

    headers = {"Host": host} if host else {}
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            response = http_get(address, headers, timeout=2)
            last = f"{response.status} {response.body!r}"
            if response.status == 200 and response.body.startswith("cosmos-a4-") and expect in (None, response.body):
                return response.body
        except OSError as error:
            last = repr(error)
        time.sleep(0.02)
    raise TimeoutError(f"GET {address} Host={host}: not routed within {timeout}s (last: {last})")


# ------------------------------------------------------------- a second dockerd

SECOND_ROOT = Path("/tmp/cosmos-a4-dockerd")
SECOND_BRIDGE = "cosmosa4br"
SECOND_SUBNET = "10.213.0.1/24"


@dataclass
class Daemon:
    """A private dockerd (own socket, data, exec root and bridge) that a test may restart.

    It runs with ``--live-restore`` so its containers survive a restart, and
    leaves the shared engine, which other tests use, alone.
    """

    root: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def start(self, timeout: float = 30.0) -> None:
        from tests.support.engines import start_dockerd

        self.proc = start_dockerd(self.root, self.host, SECOND_BRIDGE, "--live-restore", timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout)

    def client(self) -> DockerClient:
        import docker

        return docker.DockerClient(base_url=self.host)


def _bridge() -> None:
    """Create the second daemon's bridge (idempotent)."""
    if subprocess.run(["ip", "link", "show", SECOND_BRIDGE], capture_output=True, check=False).returncode == 0:
        return
    for argv in (
        ["ip", "link", "add", SECOND_BRIDGE, "type", "bridge"],
        ["ip", "addr", "add", SECOND_SUBNET, "dev", SECOND_BRIDGE],
        ["ip", "link", "set", SECOND_BRIDGE, "up"],
    ):
        subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture
def second_dockerd() -> Iterator[Daemon]:
    """A private, restartable dockerd; its containers are removed and it is stopped afterwards."""
    import shutil as _shutil

    from tests.integration.conftest import unavailable
    from tests.support.images import remove_test_containers

    if _shutil.which("dockerd") is None or _shutil.which("ip") is None or os.geteuid() != 0:
        unavailable("a second dockerd needs root, dockerd and ip")
    try:
        _bridge()
    except subprocess.CalledProcessError as error:
        unavailable(f"cannot create bridge {SECOND_BRIDGE}: {error.stderr!r}")
    daemon = Daemon(SECOND_ROOT)
    daemon.start()
    try:
        yield daemon
    finally:
        if daemon.proc is None or daemon.proc.poll() is not None:
            daemon.start()
        client = daemon.client()
        remove_test_containers(client)
        client.close()
        daemon.stop()
        # dockerd bind-mounts its data root onto itself and may leave that mount behind.
        subprocess.run(["umount", str(daemon.root / "data")], capture_output=True, check=False)
