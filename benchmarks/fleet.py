"""Fleet mode: cross-host convergence, expiry after kill -9, and store requests at 20 hosts x 50 containers.

Targets (issue 9):
* convergence: `docker run` on host A -> first routed 200 through host B's HAProxy, p50 <= 1 s, p95 <= 2 s (>= 20 runs);
* expiry: kill -9 of an agent -> its containers leave the other hosts' configs within lease + 2 s;
* scale: 20 hosts x 50 containers: convergence p95 and store requests per host per minute, idle and
  under churn; idle <= 80 requests per host per minute.

`real` runs three `cosmos watch` processes (own dockerd, own HAProxy, one dynalite table: the
test fleet of tests/integration/fleet); `scale` runs 20 simulated agents in one process (the real
Agent loop, pipeline, DynamoDB store and FleetMember against dynalite; a queue as event source and a
recording reloader), each reporting 50 containers.

    .venv/bin/python benchmarks/fleet.py real [--runs 20] [--expiry-runs 3]
    .venv/bin/python benchmarks/fleet.py scale [--hosts 20] [--containers 50] [--minute 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_common import summary  # noqa: E402


def still_routed(config: str, status: int, container_id: str) -> bool:
    """Whether a host still routes a container: its HAProxy config holds the container's
    ``server`` line (named by the container id Cosmos stores: Docker's 12-character short id)
    or its HAProxy still answers for the service (anything but 404).

    Expiry counts until this is false on every other host; the backend's name is not a
    usable probe (backends are named ``be_<service>`` and a service may outlive one host).
    """
    return any(f"server {name} " in config for name in {container_id, container_id[:12]}) or status != 404


def real(args: argparse.Namespace) -> dict:
    import docker

    from tests.integration.fleet.conftest import LEASE, Node, start_nodes, wait_until
    from tests.support.dynalite import start_dynalite
    from tests.support.engines import make_engines
    from tests.support.images import build_backend_image

    haproxy_bin = shutil.which("haproxy") or "/usr/sbin/haproxy"
    main_client = docker.from_env()
    image = build_backend_image(main_client)
    dynalite = start_dynalite()
    engines = make_engines(3, [image])
    workdir = Path(tempfile.mkdtemp(prefix="cosmos-fleet-bench-"))
    prefix = f"fb{uuid.uuid4().hex[:6]}"
    store = f"dynamodb://fleet-{prefix}?endpoint={dynalite.endpoint}"
    nodes = [Node(name, engine, workdir / name, store, prefix, image, dict(dynalite.env))
             for engine, name in zip(engines, "abc", strict=True)]
    out: dict = {}
    try:
        start_nodes(nodes, haproxy_bin)
        a, b, _ = nodes
        totals, engine_share = [], []
        for run in range(args.runs):
            service = f"conv{run}"
            started = time.perf_counter()
            container = a.run(service, service)
            engine_share.append(time.perf_counter() - started)
            expect = (200, f"{prefix}-a-{service}\n")
            while b.body(service) != expect:
                if time.perf_counter() - started > 20:
                    raise TimeoutError(f"run {run}: not routed through b")
                time.sleep(0.005)
            totals.append(time.perf_counter() - started)
            container.remove(force=True)
            wait_until(lambda s=service: b.body(s)[0] == 404 and a.body(s)[0] == 404, "removed", 30)
        out["convergence_s"] = summary(totals)
        out["docker_run_s"] = summary(engine_share)
        out["after_start_s"] = summary([t - e for t, e in zip(totals, engine_share, strict=True)])
        out["load_average"] = os.getloadavg()
        expiry = []
        others = [n for n in nodes if n is not a]
        for run in range(args.expiry_runs):
            service = f"exp{run}"
            container = a.run(service, service)
            for node in others:
                wait_until(lambda n=node, s=service: n.body(s)[0] == 200, f"{node.name} routes {service}", 30)
            killed = time.perf_counter()
            a.agent.proc.kill()  # SIGKILL, without waiting for the process: the clock starts at the signal
            while any(still_routed(n.config(), n.body(service)[0], container.id) for n in others):
                if time.perf_counter() - killed > LEASE + 30:
                    raise TimeoutError(f"run {run}: {service} still routed by the other hosts")
                time.sleep(0.01)
            expiry.append(time.perf_counter() - killed)
            a.agent.proc.wait(10)
            a.start_agent(haproxy_bin)
            for node in others:
                wait_until(lambda n=node, s=service: n.body(s)[0] == 200, "back after the restart", 60)
        out["expiry_s"] = summary(expiry)
        out["lease_s"] = LEASE
        out["expiry_target_s"] = LEASE + 2
    finally:
        for node in nodes:
            node.close()
        for engine in engines:
            engine.close()
        dynalite.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def scale(args: argparse.Namespace) -> dict:
    from cosmos_storage_dynamodb.store import DynamoDBStore

    from cosmos_core.agent import Agent
    from cosmos_core.fleet_agent import join
    from cosmos_core.plugins import Plugins
    from cosmos_core.runtime import Runtime
    from cosmos_core.settings import Settings
    from tests.support.dynalite import start_dynalite
    from tests.unit.test_fleet_agent import QueueSource, Recorder

    dynalite = start_dynalite()
    os.environ.update(dynalite.env)
    store = f"dynamodb://fleet-scale-{uuid.uuid4().hex[:6]}"
    hosts = []
    try:
        plugins = Plugins.discover()
        for index in range(args.hosts):
            settings = Settings(store=store, host_id=f"h{index:02d}", table="fleet", log_level="warning")
            runtime = Runtime(settings, plugins)
            source = QueueSource()
            wrapped, member = join(runtime, source)
            reloader = Recorder()
            agent = Agent(runtime, wrapped, reloader)
            thread = threading.Thread(target=agent.run, daemon=True)
            thread.start()
            hosts.append((index, runtime, source, member, reloader, agent, thread))

        def ids(index: int, version: int) -> list[str]:
            return [f"h{index:02d}c{k:02d}v{version}" if k == 0 else f"h{index:02d}c{k:02d}"
                    for k in range(args.containers)]

        def push(index: int, version: int, source: QueueSource) -> None:
            import random

            names = ids(index, version)
            random.Random(index).shuffle(names)
            # Five services, ten containers each per host: every service spans every host.
            from cosmos_core.model import Container, RunningContainer, Service, Snapshot

            groups: dict[str, list[Container]] = {}
            for n, cid in enumerate(sorted(names)):
                groups.setdefault(f"svc{n % 5}", []).append(Container(cid, f"10.{index}.{n // 250}.{n % 250 + 1}", 8080))
            running = tuple(RunningContainer(s, c) for s, cs in groups.items() for c in cs)
            candidates = tuple(Service(s, "host", f"{s}.test", None, 8080, tuple(cs)) for s, cs in groups.items())
            source.items.put(Snapshot(None, running, candidates))

        def converge(needle: str, what: str, limit: float = 120.0) -> None:
            deadline = time.perf_counter() + limit
            while not all(needle in h[4].last for h in hosts):
                if time.perf_counter() > deadline:
                    missing = [h[0] for h in hosts if needle not in h[4].last]
                    stats = {h[0]: vars(h[5].stats) for h in hosts if h[0] in missing}
                    raise TimeoutError(f"{what}: hosts {missing} never rendered {needle!r}; {stats}")
                time.sleep(0.01)

        started = time.perf_counter()
        for index, _, source, *_ in hosts:
            push(index, 0, source)
        for index in range(args.hosts):
            converge(f"server h{index:02d}c01 ", "initial sync")
        print(f"initial sync {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        out: dict = {"hosts": args.hosts, "containers_per_host": args.containers,
                     "initial_convergence_s": time.perf_counter() - started,
                     # all hosts start at once: conflicting applies (each a pipeline retry) and passes
                     # that failed (gave up after the pipeline's retries; the agent retries them later)
                     "initial_conflicts": sum(h[1].store.conflicts for h in hosts),  # type: ignore[attr-defined]
                     "initial_failed_passes": sum(h[5].stats.failures for h in hosts)}

        def requests() -> int:
            total = 0
            for _, runtime, _, member, *_ in hosts:
                total += runtime.store.requests  # type: ignore[attr-defined]
                total += member.store.requests if isinstance(member.store, DynamoDBStore) else 0
            return total

        # Settle: the initial burst of 20 concurrent syncs conflicts and retries with backoff;
        # measure idle only once the generation has stood still for 10 s.
        probe = hosts[0][3].store
        last_key, still_since = probe.fleet("fleet").key, time.perf_counter()
        while time.perf_counter() - still_since < 10:
            time.sleep(0.5)
            key = probe.fleet("fleet").key
            if key != last_key:
                last_key, still_since = key, time.perf_counter()
        before = requests()
        time.sleep(args.minute)
        idle = (requests() - before) / args.hosts * 60 / args.minute
        out["idle_requests_per_host_per_minute"] = round(idle, 1)
        print(f"idle {idle:.1f} requests/host/min", file=sys.stderr, flush=True)

        # Churn: every `churn_every` s one host (round robin) replaces one container; measure how long
        # until every other host's config holds the new one.
        latencies = []
        before = requests()
        conflicts_before = sum(h[1].store.conflicts for h in hosts)  # type: ignore[attr-defined]
        churn_started = time.perf_counter()
        version = 0
        while time.perf_counter() - churn_started < args.minute:
            version += 1
            index, _, source, *_ = hosts[version % args.hosts]
            t0 = time.perf_counter()
            push(index, version, source)
            converge(f"server h{index:02d}c00v{version} ", f"churn change {version}")
            latencies.append(time.perf_counter() - t0)
            time.sleep(max(0.0, args.churn_every - (time.perf_counter() - t0)))
        elapsed = time.perf_counter() - churn_started
        out["churn_changes_per_minute"] = round(version / elapsed * 60, 1)
        out["churn_requests_per_host_per_minute"] = round((requests() - before) / args.hosts * 60 / elapsed, 1)
        out["churn_convergence_s"] = summary(latencies)
        out["load_average"] = os.getloadavg()
        out["churn_conflicts"] = sum(h[1].store.conflicts for h in hosts) - conflicts_before  # type: ignore[attr-defined]
    finally:
        for _, runtime, _, member, _, agent, thread in hosts:
            agent.stop()
            thread.join(10)
            if member is not None:
                member.stop()
            runtime.close()
        dynalite.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("real")
    r.add_argument("--runs", type=int, default=20)
    r.add_argument("--expiry-runs", type=int, default=3)
    s = sub.add_parser("scale")
    s.add_argument("--hosts", type=int, default=20)
    s.add_argument("--containers", type=int, default=50)
    s.add_argument("--minute", type=float, default=60.0, help="length of the idle and churn windows, s")
    s.add_argument("--churn-every", type=float, default=2.0, help="seconds between container changes")
    args = parser.parse_args()
    os.environ.setdefault("COSMOS_LOG_LEVEL", "warning")
    from cosmos_core import logs

    logs.configure("json", "warning")
    result = real(args) if args.what == "real" else scale(args)
    print(json.dumps(result, indent=2, default=lambda v: round(v, 4)))


if __name__ == "__main__":
    main()
