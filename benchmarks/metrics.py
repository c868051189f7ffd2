"""Metrics cost on an agent with 1,000 containers: /metrics latency and the reconcile-pass overhead.

Targets (issue 15): ``GET /metrics`` answers in <= 50 ms, and metrics slow a
reconcile pass by <= 5 %.

In one process, like ``cosmos watch``: a SQLite store in a temporary
directory, 250 services x 4 containers (1,000), the real :class:`Agent.step`
(pipeline + a reloader that only records the config), and
``cosmos_core.metrics.serve`` on a loopback port.  Each pass moves one
container to a new address, so every pass reconciles, renders 1,000 servers
and writes one change.

* Pass overhead: passes alternate between metrics off (a runtime whose store
  is not wrapped, metrics disabled) and on (counted store, every recording);
  the median of each is compared.  Run once idle and once with a scraper
  hitting ``/metrics`` 10 times a second (Prometheus scrapes every 15 s).
* Scrape latency: after the passes (histograms and gauges populated), a
  fresh HTTP connection per request, ``--scrapes`` times.

    .venv/bin/python benchmarks/metrics.py [--passes 200] [--scrapes 300]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import threading
import time
from pathlib import Path

from cosmos_core import metrics
from cosmos_core.logs import configure
from cosmos_core.agent import Agent
from cosmos_core.contracts import ReloadOutcome
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings

SERVICES, PER_SERVICE = 250, 4


class Recorder:
    def apply(self, bundle: object, previous: object) -> ReloadOutcome:
        return ReloadOutcome(True)


class Idle:
    def snapshots(self):  # noqa: ANN201
        return iter(())

    def close(self) -> None:
        return None


def snapshot(step: int) -> Snapshot:
    services = []
    for s in range(SERVICES):
        containers = tuple(
            Container(f"c{s:03d}{c}", f"10.{s // 200}.{s % 200}.{c + 1 + (step if s == step % SERVICES and c == 0 else 0) % 200}")
            for c in range(PER_SERVICE)
        )
        services.append(Service(f"svc{s:03d}", "host", f"svc{s}.example.com", None, 8080, containers))
    running = tuple(RunningContainer(s.name, c) for s in services for c in s.containers)
    return Snapshot("bench", running, tuple(services))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def scrape(port: int) -> tuple[float, int]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200
    return time.perf_counter() - started, len(body)


def passes(agents: dict[str, Agent], count: int, registry: object) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"off": [], "on": []}
    for step in range(count):
        for mode in ("off", "on") if step % 2 else ("on", "off"):
            metrics._m = registry if mode == "on" else None  # noqa: SLF001 - the switch, without rebuilding
            snap = snapshot(step * 2 + (mode == "on"))
            started = time.perf_counter()
            assert agents[mode].step(snap)
            times[mode].append(time.perf_counter() - started)
    metrics._m = registry  # noqa: SLF001
    return times


def report(label: str, times: dict[str, list[float]]) -> None:
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    paired = statistics.median(b / a for a, b in zip(times["off"], times["on"]))  # back-to-back pairs
    print(f"{label}: pass median off {off * 1000:.1f} ms, on {on * 1000:.1f} ms, "
          f"overhead {(on / off - 1) * 100:+.1f} % (median of paired ratios {(paired - 1) * 100:+.1f} %)  "
          f"(p90 off {percentile(times['off'], 0.9) * 1000:.1f}, on {percentile(times['on'], 0.9) * 1000:.1f} ms; "
          f"{len(times['on'])} passes each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--scrapes", type=int, default=300)
    args = parser.parse_args()
    configure("console", "warning")
    with tempfile.TemporaryDirectory() as tmp:
        plugins = Plugins.discover()
        off_runtime = Runtime(Settings(store=f"sqlite://{Path(tmp) / 'off.db'}", table="bench"), plugins)
        off_runtime.store  # noqa: B018 - built while metrics are off: not wrapped
        metrics.enable()
        registry = metrics._m  # noqa: SLF001
        on_runtime = Runtime(Settings(store=f"sqlite://{Path(tmp) / 'on.db'}", table="bench"), plugins)
        agents = {"off": Agent(off_runtime, Idle(), Recorder()), "on": Agent(on_runtime, Idle(), Recorder())}
        server = metrics.serve("127.0.0.1", 0)
        port = server.server_address[1]
        for agent in agents.values():  # warm-up: first store writes, caches
            metrics._m = registry  # noqa: SLF001
            agent.step(snapshot(0))

        report("idle", passes(agents, args.passes, registry))

        stop = threading.Event()

        def scraper() -> None:
            while not stop.wait(0.1):
                scrape(port)

        thread = threading.Thread(target=scraper, daemon=True)
        thread.start()
        report("scraped 10/s", passes(agents, args.passes, registry))
        stop.set()
        thread.join()

        # The added work itself, without the pass around it: the recordings of one pass and the
        # counted-store wrapper's cost per call (a bare function call through the wrapper).
        services = list(on_runtime.store.load("bench").services.values())
        rounds = 2000
        started = time.perf_counter()
        for _ in range(rounds):
            metrics.pass_succeeded("bench", services, 0.01, 0.001, True, time.time() - 0.5)
        record = (time.perf_counter() - started) / rounds

        class Bare:
            def ping(self) -> None:
                return None

        bare, counted = Bare(), metrics.instrument_store(Bare())
        started = time.perf_counter()
        for _ in range(rounds):
            bare.ping()
        plain = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(rounds):
            counted.ping()
        wrapper = (time.perf_counter() - started - plain) / rounds
        print(f"direct cost: recordings of one pass {record * 1e6:.0f} us (1,000 containers), counted-store wrapper "
              f"{wrapper * 1e6:.1f} us per call (a pass makes 2 store calls)")

        latencies, size = [], 0
        for _ in range(args.scrapes):
            seconds, size = scrape(port)
            latencies.append(seconds)
        text = metrics.render().decode()
        containers = [line for line in text.splitlines() if line.startswith('cosmos_containers{table="bench"}')]
        print(f"GET /metrics ({size} bytes, {containers[0]}): p50 {statistics.median(latencies) * 1000:.2f} ms, "
              f"p95 {percentile(latencies, 0.95) * 1000:.2f} ms, p99 {percentile(latencies, 0.99) * 1000:.2f} ms, "
              f"max {max(latencies) * 1000:.2f} ms over {args.scrapes} scrapes")
        server.shutdown()
        off_runtime.close()
        on_runtime.close()


if __name__ == "__main__":
    main()
