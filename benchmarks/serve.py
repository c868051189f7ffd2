"""Benchmark ``cosmos serve``: POST /generate with the seed payload, measured with wrk on loopback.

Runs, each against a fresh ``cosmos serve`` with the embedded SQLite store
(default settings, info-level JSON logs written to a file):

* ``paced``: wrk paces the connections to about ``--rate`` requests/s in
  total for ``--duration`` seconds, every request the seed payload (after the
  first, a no-change pass: load, reconcile, render, nothing to write);
* ``paced-writes``: the same, alternating two payloads that differ by one
  running container, so nearly every request writes to the store;
* ``max``: no pacing: as many requests/s as ``--connections`` connections get.

It also times the pipeline alone in-process (parse + generate), the part the
server adds HTTP and threading to.

    .venv/bin/python benchmarks/serve.py [--duration 60] [--rate 300] [--connections 10]

Needs ``wrk`` (``apt-get install -y wrk``).  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed-payload.json"
LUA = Path(__file__).with_name("serve.lua")
sys.path.insert(0, str(ROOT / "src"))

from cosmos_core.server.testing import start_serve  # noqa: E402 - after the sys.path line


@dataclass
class Run:
    name: str
    target_rate: float
    rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    server_passes: int
    server_conflicts: int
    load: tuple[float, float]


def write_variant(seed: Path, directory: Path) -> Path:
    """The seed without one running container of app1: alternating it with the seed changes the store."""
    data = json.loads(seed.read_text())
    data["runningServices"] = [r for r in data["runningServices"] if r["id"] != "jk3243j54jl"]
    path = directory / "seed-minus-one.json"
    path.write_text(json.dumps(data))
    return path


def wrk(url: str, payloads: list[Path], duration: int, connections: int, threads: int, rate: float) -> dict[str, float]:
    env = {
        **os.environ,
        "COSMOS_BENCH_PAYLOADS": ":".join(str(p) for p in payloads),
        "COSMOS_BENCH_RATE": str(rate),
        "COSMOS_BENCH_THREADS": str(threads),
    }
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(LUA),
               url + "/generate"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def run(name: str, payloads: list[Path], args: argparse.Namespace, rate: float, work: Path) -> Run:
    load_before = os.getloadavg()[0]
    log = work / f"{name}.log"
    store = work / f"{name}.db"
    with start_serve(["--store", f"sqlite://{store}"], log_path=log, env={"COSMOS_LOG_LEVEL": "info"}) as server:
        wrk(server.url, payloads, 3, args.connections, args.threads, 0)  # warm-up (and the first, writing pass)
        before = len([e for e in server.log_events() if e.get("event") == "reconciled"])
        result = wrk(server.url, payloads, args.duration, args.connections, args.threads, rate)
        events = server.log_events()
    passes = len([e for e in events if e.get("event") == "reconciled"]) - before
    conflicts = len([e for e in events if e.get("event") == "store_conflict"])
    load_after = os.getloadavg()[0]
    errors = sum(int(result[k]) for k in result if k.startswith("errors_"))
    seconds = result["duration_us"] / 1e6
    return Run(name, rate, result["requests"] / seconds, result["p50_us"] / 1000, result["p90_us"] / 1000,
               result["p99_us"] / 1000, result["max_us"] / 1000, int(result["requests"]), errors, passes, conflicts,
               (load_before, load_after))


def pipeline_alone(work: Path, rounds: int = 2000) -> tuple[float, float]:
    """Median and p99 (ms) of parse + pipeline.generate for the seed, in-process, warm."""
    from cosmos_core import logs, payload, pipeline
    from cosmos_core.runtime import Runtime
    from cosmos_core.settings import Settings

    logs.configure("json", "warning")
    runtime = Runtime(Settings(store=f"sqlite://{work / 'alone.db'}"))
    body = SEED.read_bytes()
    samples = []
    try:
        for i in range(rounds + 100):
            started = time.perf_counter()
            pipeline.generate(runtime, payload.loads(body))
            if i >= 100:
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        runtime.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60, help="seconds per run (default 60)")
    parser.add_argument("--rate", type=float, default=300.0, help="paced target, requests/s (default 300)")
    parser.add_argument("--connections", type=int, default=10, help="wrk connections (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")

    with tempfile.TemporaryDirectory(prefix="cosmos-bench-serve-") as tmp:
        work = Path(tmp)
        variant = write_variant(SEED, work)
        runs = [
            run("paced", [SEED], args, args.rate, work),
            run("paced-writes", [SEED, variant], args, args.rate, work),
            run("max", [SEED], args, 0, work),
        ]
        median, p99 = pipeline_alone(work)

    print(f"wrk -t{args.threads} -c{args.connections}, {args.duration} s per run, loopback, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    print("| run | target req/s | achieved req/s | p50 ms | p90 ms | p99 ms | max ms | requests | errors "
          "| passes logged | store conflicts | load avg before/after |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        target = f"{r.target_rate:.0f}" if r.target_rate else "unpaced"
        print(f"| {r.name} | {target} | {r.rate:.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | {r.p99_ms:.2f} "
              f"| {r.max_ms:.1f} | {r.requests} | {r.errors} | {r.server_passes} | {r.server_conflicts} "
              f"| {r.load[0]:.2f} / {r.load[1]:.2f} |")
    print(f"\nPipeline alone (parse + generate, in-process, warm): median {median:.3f} ms, p99 {p99:.3f} ms")


if __name__ == "__main__":
    main()
