"""benchmarks/fleet.py: the expiry probe must see a container in a config the built-in template renders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cosmos_core import pipeline
from cosmos_core.model import Container, Service
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("fleet_benchmark", ROOT / "benchmarks" / "fleet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_of(services: list[Service]) -> str:
    runtime = Runtime(Settings(store="sqlite:///:memory:"))
    return pipeline.render(runtime, {s.name: s for s in services}).config


def test_the_expiry_probe_sees_a_routed_container_until_it_left() -> None:
    bench = load_benchmark()
    full_id = "0123456789ab" + "c" * 52  # what docker-py's container.id gives; Cosmos stores the short id
    dead = Container(full_id[:12], "172.30.0.5", 8080, host_id="a")
    alive = Container("fedcba9876543210fedc", "172.31.0.5", 8080, host_id="b")
    routed = config_of([Service("exp0", "host", "exp0.test", None, 8080, (dead, alive))])
    assert "backend exp0" not in routed  # the old probe: it saw no backend and stopped the clock at once
    assert bench.still_routed(routed, 200, full_id)
    assert bench.still_routed(routed, 404, full_id)  # config still names it, even before a reload answers 404
    left = config_of([Service("exp0", "host", "exp0.test", None, 8080, (alive,))])
    assert not bench.still_routed(left, 404, full_id)
    assert bench.still_routed(left, 503, full_id)  # HAProxy not yet answering 404: keep waiting
    gone = config_of([])
    assert not bench.still_routed(gone, 404, full_id)
