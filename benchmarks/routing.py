"""Routing cost through HAProxy at 10,000 host services: ACL scan vs map lookups, in one run.

For each routing style (``acls``: one ACL + ``use_backend`` per service, checked in order, as
before issue 10; ``maps``: the three map lookups of ``cosmos_core.routing_maps``) this script

1. renders the built-in template for N host services (``h<i>.example.com``), each with one
   server: a stub HAProxy on loopback that answers 200 itself (with ``--local``, each backend
   answers 200 itself instead, so that only HAProxy's routing work differs between cases);
2. times ``haproxy -c`` on the config (median of ``--checks`` runs);
3. starts the router HAProxy and runs ``wrk`` with the Host header of the first, middle and
   last service in match order, and of an unknown host (404 fallback), ``--rounds`` times
   interleaved; reports the median req/s per case and each case's ratio to the first, and the
   router's CPU time per request (from /proc: on a shared machine, far steadier than req/s).

It also times the in-process render of each style and ``cosmos generate`` (a fresh process on
a new SQLite file) at N services.

    .venv/bin/python benchmarks/routing.py [--services 10000] [--duration 4] [--rounds 3] [--local]

Before issue 10 (main at 81ddeeb), from a copy of that tree:

    git archive 81ddeeb | tar -x -C /tmp/cosmos-before
    PYTHONPATH=/tmp/cosmos-before/src:/tmp/cosmos-before/plugins/routing_host_path/src \
        .venv/bin/python benchmarks/routing.py --styles acls --local
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import net  # noqa: E402
from tests.support.net import free_port  # noqa: E402


def wait_port(port: int, proc: subprocess.Popen) -> None:
    if not net.wait_port(port, proc, timeout=60):
        if proc.poll() is not None:
            raise SystemExit(f"haproxy exited: {proc.stdout.read().decode() if proc.stdout else ''}")
        raise SystemExit("haproxy did not start")


STUB = """global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s
frontend stub
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string ok
"""


def payload(services: int, stub_port: int) -> dict:
    return {"table": "bench", "candidates": [
        {"serviceName": f"svc{i}", "configMode": "host", "predicate": f"h{i}.example.com",
         "containers": [{"id": f"c{i}", "ip": f"127.0.0.1:{stub_port}"}]} for i in range(services)]}


def render(data: dict, use_maps: bool) -> tuple[str, dict[str, bytes], list[str], float]:
    """Config, map files, hosts in match order, render seconds (in-process, warm)."""
    from cosmos_core import payload as payloads
    from cosmos_core import pipeline
    from cosmos_core.plugins import Plugins
    from cosmos_core.runtime import Runtime
    from cosmos_core.settings import Settings
    from cosmos_routing_host_path import plugin as routing

    runtime = Runtime(Settings(store="sqlite://:memory:"), Plugins.from_plugins(routing))
    runtime.emitter.use_maps = use_maps
    snapshot = pipeline.validate_routing(payloads.parse(data), runtime.routing)
    from cosmos_core.reconcile import reconcile

    services = reconcile({}, snapshot)
    pipeline.render(runtime, services)  # warm
    started = time.perf_counter()
    rendered = pipeline.render(runtime, services)
    elapsed = time.perf_counter() - started
    config = rendered if isinstance(rendered, str) else rendered.config
    routes = pipeline.build_routes([services[n] for n in sorted(services)], runtime.routing)
    files = {}
    if use_maps:
        from cosmos_core import routing_maps

        files = routing_maps.plan(routes).files
    by_backend = {**{s.name: s.predicate for s in services.values()},  # before issue 10: backend = service name
                  **{f"be_{s.name}": s.predicate for s in services.values()}}
    order = [by_backend[r.service] for r in routes]
    runtime.close()
    return config, files, order, elapsed


def haproxy_check(binary: str, cfg: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([binary, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"haproxy -c refused {cfg}: {done.stdout}{done.stderr}")
    return statistics.median(times)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, host: str, seconds: float, connections: int, pid: int | None = None) -> tuple[float, str, float]:
    """req/s, non-2xx count, and HAProxy CPU microseconds per request (robust on a busy machine)."""
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-H", f"Host: {host}",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True).stdout
    cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    per_request = cpu * 1e6 / int(count.group(1)) if count and int(count.group(1)) else 0.0
    return (float(match.group(1)) if match else 0.0), (non2xx.group(1) if non2xx else "0"), per_request


def time_generate(data: dict, work: Path, runs: int) -> float:
    cosmos = Path(sys.executable).parent / "cosmos"
    path = work / "payload.json"
    path.write_text(json.dumps(data))
    times = []
    for i in range(runs):
        started = time.perf_counter()
        done = subprocess.run([str(cosmos), "--log-level", "warning", "generate", str(path), "--store",
                               f"sqlite://{work}/gen-{i}.db", "--output", str(work / f"gen-{i}.cfg")],
                              capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"cosmos generate failed: {done.stderr}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--checks", type=int, default=3)
    parser.add_argument("--generate-runs", type=int, default=3)
    parser.add_argument("--styles", default="acls,maps",
                        help="acls, maps or both; 'acls' alone also runs on code before issue 10 (PYTHONPATH)")
    parser.add_argument("--local", action="store_true",
                        help="backends answer 200 themselves instead of forwarding to the stub")
    args = parser.parse_args()
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    work = Path(tempfile.mkdtemp(prefix="cosmos-routing-bench-"))
    procs: list[subprocess.Popen] = []
    results: dict = {"services": args.services}
    try:
        stub_port = free_port()
        (work / "stub.cfg").write_text(STUB.format(port=stub_port))
        stub = subprocess.Popen([binary, "-db", "-f", str(work / "stub.cfg")], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        procs.append(stub)
        wait_port(stub_port, stub)
        data = payload(args.services, stub_port)
        results["generate_s"] = round(time_generate(data, work, args.generate_runs), 3)
        for style in args.styles.split(","):
            config, files, order, render_s = render(data, style == "maps")
            port = free_port()
            config = config.replace("    bind :80\n", f"    bind 127.0.0.1:{port}\n")
            config = config.replace("    user haproxy\n    group haproxy\n    daemon\n", "")
            config = config.replace("    log 127.0.0.1 local0\n    log 127.0.0.1 local1 notice\n", "")
            config = config.replace("    option httplog\n", "").replace("    log global\n", "")
            config = config.replace(" check", "")  # no health checks against the stub: 10,000 checkers add noise
            if args.local:  # each backend answers itself: the figure is HAProxy's routing cost alone
                config = re.sub(r"    server (\S+) \S+\n", lambda m: "    http-request return status 200 content-type "
                                f"text/plain string {m.group(1)}\n", config)
            directory = work / f"router-{style}"  # not work/maps: cosmos generate writes its maps/ there
            directory.mkdir()
            for name, content in files.items():
                (directory / name).parent.mkdir(parents=True, exist_ok=True)
                (directory / name).write_bytes(content)
            cfg = directory / "haproxy.cfg"
            cfg.write_text(config)
            check_s = haproxy_check(binary, cfg, args.checks)
            router = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            procs.append(router)
            wait_port(port, router)
            cases = {"first": order[0], "middle": order[len(order) // 2], "last": order[-1],
                     "unknown": "unknown.example.org"}
            samples: dict[str, list[float]] = {name: [] for name in cases}
            cpu_us: dict[str, list[float]] = {name: [] for name in cases}
            errors: dict[str, str] = {}
            wrk(port, cases["first"], 1, args.connections)  # warm-up
            for _ in range(args.rounds):
                for name, host in cases.items():
                    rate, non2xx, us = wrk(port, host, args.duration, args.connections, router.pid)
                    samples[name].append(rate)
                    cpu_us[name].append(us)
                    print(f"{style} {name} {host}: {rate:.0f} req/s, {us:.1f} CPU-us/req", file=sys.stderr, flush=True)
                    errors[name] = non2xx
            medians = {name: round(statistics.median(v)) for name, v in samples.items()}
            cpu_medians = {name: round(statistics.median(v), 1) for name, v in cpu_us.items()}
            results[style] = {
                "render_s": round(render_s, 3), "haproxy_check_s": round(check_s, 3),
                "config_lines": config.count("\n"), "hosts": cases,
                "req_per_s": medians, "ratio_to_first": {n: round(v / max(medians["first"], 1), 3) for n, v in medians.items()},
                "haproxy_cpu_us_per_request": cpu_medians,
                "cpu_ratio_to_first": {n: round(v / max(cpu_medians["first"], 0.001), 3) for n, v in cpu_medians.items()},
                "non_2xx": errors, "samples": samples,
            }
            router.terminate()
            router.wait(timeout=30)
        print(json.dumps(results, indent=1))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("COSMOS_LOG_LEVEL", "warning")
    main()
