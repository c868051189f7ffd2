"""A fleet on one machine: extra Docker Engines, one HAProxy and one ``cosmos watch`` per host, one dynalite table.

Each *node* is a host of the fleet: its own dockerd (own bridge, reachable from
the machine), its own HAProxy process on the machine (master-worker, reloaded
by the ``host`` reloader through its master socket, bound to its own loopback
port) and its own ``cosmos watch --host-id NODE`` subprocess.  All agents share
one DynamoDB table on the session's dynalite; a node may reach it through a
:class:`~tests.support.engines.TcpProxy` so a test can cut it off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agent.conftest import COSMOS, ROOT, Agent
from tests.support.dynalite import Dynalite
from tests.support.engines import Engine, TcpProxy, engines_available, make_engines
from tests.support.images import BACKEND_PORT, HAPROXY_STARTER_CFG, TEST_LABELS, http_get, wait_http
from tests.support.net import free_port, wait_until  # noqa: F401 (wait_until is imported from here)

HEARTBEAT, LEASE = 1.0, 3.0


@pytest.fixture(scope="module")
def engines(backend_image: str) -> Iterator[list[Engine]]:
    """Three private Docker Engines with the backend image, removed after the module."""
    from tests.integration.conftest import unavailable

    reason = engines_available()
    if reason:
        unavailable(reason)
    made = make_engines(3, [backend_image])
    try:
        yield made
    finally:
        for engine in made:
            engine.close()


@dataclass
class Node:
    """One fleet host: engine + HAProxy on the machine + ``cosmos watch``."""

    name: str
    engine: Engine
    workdir: Path
    store: str
    prefix: str
    backend_image: str
    env: dict[str, str]
    port: int = 0
    haproxy: subprocess.Popen[bytes] | None = None
    agents: list[Agent] = field(default_factory=list)

    @property
    def agent(self) -> Agent:
        return self.agents[-1]

    def start_haproxy(self, haproxy_bin: str) -> None:
        self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "haproxy.cfg").write_text(HAPROXY_STARTER_CFG.replace("bind :80", f"bind 127.0.0.1:{self.port}"))
        self.haproxy = subprocess.Popen(
            [haproxy_bin, "-W", "-db", "-S", str(self.workdir / "master.sock"), "-f", str(self.workdir / "haproxy.cfg")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{self.port}/", timeout=15)
        except TimeoutError as error:
            raise TimeoutError(f"HAProxy of {self.name} did not start: {error}") from None

    def start_agent(self, haproxy_bin: str, *extra: str) -> Agent:
        (self.workdir / "cosmos.toml").write_text(f'[plugins.host]\nmaster_socket = "{self.workdir}/master.sock"\n')
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "AWS_"))}
        environ |= self.env | {
            "COSMOS_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT), "DOCKER_HOST": self.engine.host,
            "COSMOS_BIND": f"127.0.0.1:{self.port}", "COSMOS_CONFIG": str(self.workdir / "cosmos.toml"),
            "COSMOS_HAPROXY_BIN": haproxy_bin,
        }
        argv = [
            *COSMOS, "watch", "--store", self.store, "--table", "fleet", "--host-id", self.name,
            "--heartbeat", str(HEARTBEAT), "--lease", str(LEASE), "--reloader", "host",
            "--haproxy-config", str(self.workdir / "haproxy.cfg"), "--name-filter", self.prefix,
            "--debounce-quiet", "0.05", *extra,
        ]
        agent = Agent(argv, self.workdir / f"agent-{len(self.agents)}.log", environ).start()
        self.agents.append(agent)
        return agent

    def run(self, name: str, service: str, ports: dict[str, Any] | None = None, **labels: str) -> Any:
        """A backend container ``<prefix>-<node>-<name>`` on this node's engine (its page names it)."""
        client = self.engine.client()
        try:
            full = f"{self.prefix}-{self.name}-{name}"
            return client.containers.run(
                self.backend_image, detach=True, name=full, hostname=full, ports=ports,
                labels={**TEST_LABELS, "cosmos.service": service, "cosmos.predicate": f"{service}.test",
                        "cosmos.port": str(BACKEND_PORT), **{f"cosmos.{k}": v for k, v in labels.items()}},
            )
        finally:
            client.close()

    def body(self, service: str) -> tuple[int, str]:
        try:
            response = http_get(f"http://127.0.0.1:{self.port}/", {"Host": f"{service}.test"}, timeout=2)
        except OSError as exc:
            return 0, repr(exc)
        return response.status, response.body

    def config(self) -> str:
        return (self.workdir / "haproxy.cfg").read_text()

    def close(self) -> None:
        for agent in self.agents:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.stop(signal.SIGKILL)
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(10)


def start_nodes(nodes: list[Node], haproxy_bin: str) -> None:
    """Start every node's HAProxy and agent; return once every agent joined the fleet."""
    for node in nodes:
        node.start_haproxy(haproxy_bin)
        node.start_agent(haproxy_bin)
    for node in nodes:
        node.agent.wait_event("fleet_joined", timeout=60)


@dataclass
class Fleet:
    nodes: list[Node]
    proxies: dict[str, TcpProxy]
    table: str

    def serves(self, node: Node, service: str, body: str) -> bool:
        return node.body(service) == (200, body + "\n")

    def events(self, node: Node, name: str) -> list[dict[str, Any]]:
        return node.agent.events(name)


@pytest.fixture
def fleet(engines: list[Engine], dynalite: Dynalite, backend_image: str, haproxy_bin: str,
          tmp_path: Path) -> Iterator[Fleet]:
    """Three nodes (a, b, c) on one new table; c reaches the store through a TcpProxy."""
    prefix = f"cf{uuid.uuid4().hex[:6]}"
    table = f"fleet-{prefix}"
    dyn_port = int(dynalite.endpoint.rsplit(":", 1)[1])
    proxy = TcpProxy(("127.0.0.1", dyn_port)).start()
    nodes = []
    for engine, name in zip(engines, "abc", strict=True):
        endpoint = proxy.url if name == "c" else dynalite.endpoint
        store = f"dynamodb://{table}?endpoint={endpoint}&max_attempts=2"
        nodes.append(Node(name, engine, tmp_path / name, store, prefix, backend_image, dict(dynalite.env)))
    try:
        start_nodes(nodes, haproxy_bin)
        yield Fleet(nodes, {"c": proxy}, table)
    finally:
        for node in nodes:
            node.close()
        proxy.stop()
        for engine in engines:
            client = engine.client()
            for container in client.containers.list(all=True, filters={"name": prefix}):
                container.remove(force=True, v=True)
            client.close()


def dump(node: Node) -> str:
    return json.dumps([e for e in node.agent.events() if e.get("event") != "docker_synced"][-30:], indent=1)
