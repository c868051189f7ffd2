"""Shared set-up for the agent benchmarks: images, an HAProxy container, `cosmos watch`, cleanup.

The Docker engine is the one ``DOCKER_HOST`` names (default: the local socket).
Every container is named ``<prefix>-...``, labelled ``cosmos-test=1`` and
``cosmos-bench=<prefix>``, and the agent runs with ``--name-filter <prefix>``;
everything labelled with the prefix is removed at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.images import (
    build_backend_image,
    build_haproxy_image,
    container_ip,
    http_get,
    remove_container,
    run_test_container,
    wait_for_log,
)


@dataclass
class Bench:
    client: Any
    prefix: str
    workdir: Path
    haproxy: Any
    haproxy_ip: str
    backend_image: str
    agent: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "agent.log"

    def labels(self, **cosmos: str) -> dict[str, str]:
        return {"cosmos-bench": self.prefix, **{f"cosmos.{k}": v for k, v in cosmos.items()}}

    def backend(self, name: str, **cosmos: str) -> Any:
        full = f"{self.prefix}-{name}"
        return run_test_container(self.client, self.backend_image, name=full, hostname=full, labels=self.labels(**cosmos))

    def start_agent(self, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
        env |= {"COSMOS_LOG_FORMAT": "json", "XDG_STATE_HOME": str(self.workdir)}
        argv = [
            sys.executable, "-c", "from cosmos_core.cli import main; main()", "watch",
            "--store", f"sqlite://{self.workdir}/state.db",
            "--haproxy-container", f"{self.prefix}-haproxy",
            "--name-filter", self.prefix, *extra,
        ]
        with self.log_path.open("ab") as log:
            self.agent = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        wait_event(self.log_path, "reload_skipped", 1, 30.0, also=("reload", "pass_failed"))

    def events(self, name: str) -> list[dict[str, Any]]:
        return read_events(self.log_path, name)

    def routed(self, host: str, expect: str, path: str = "/") -> bool:
        try:
            response = http_get(f"http://{self.haproxy_ip}{path}", {"Host": host}, timeout=1.0)
        except OSError:
            return False
        return response.status == 200 and response.body == expect


def read_events(path: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == name:
            found.append(record)
    return found


def wait_event(path: Path, name: str, count: int, timeout: float, also: tuple[str, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(read_events(path, n)) for n in (name, *also)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not logged {count} times in {timeout}s")
        time.sleep(0.05)


@contextmanager
def bench(tag: str) -> Iterator[Bench]:
    """A fresh HAProxy container and work directory; the agent is started by the caller."""
    import docker

    client = docker.from_env(timeout=300)
    prefix = f"cosmos-bench-{tag}-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        backend_image = build_backend_image(client)
        haproxy = run_test_container(
            client, build_haproxy_image(client), name=f"{prefix}-haproxy", labels={"cosmos-bench": prefix}
        )
        state = Bench(client, prefix, Path(tmp), haproxy, "", backend_image)
        try:
            wait_for_log(haproxy, "Loading success")
            state.haproxy_ip = container_ip(haproxy)
            yield state
        finally:
            if state.agent is not None:
                state.agent.terminate()
                state.agent.wait(30)
            cleanup(client, prefix)
            client.close()


def cleanup(client: Any, prefix: str) -> None:
    """Remove every container labelled with ``prefix`` (in parallel: there may be hundreds)."""
    from concurrent.futures import ThreadPoolExecutor

    containers = client.containers.list(all=True, filters={"label": f"cosmos-bench={prefix}"})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(remove_container, containers))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, int(-(-pct * len(ordered) // 100)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values),
        "mean": statistics.fmean(values),
    }
