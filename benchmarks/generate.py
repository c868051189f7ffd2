"""Whole-process timings of `cosmos generate` on the embedded SQLite store, beside the floor.

The floor is `benchmarks/floor.py`: a do-nothing Typer command that imports the
same libraries (typer, structlog, pluggy, jinja2, sqlite3). Every case is run as
a fresh process, interleaved with the floor, and reported as median / p90
wall time and peak RSS (from wait4).

`cosmos generate` checks its config with `haproxy -c` by default (when haproxy is
installed); the cases measure generate alone (`--no-check`, as the figures always
did), and the "checked" cases the default, check included.

    .venv/bin/python benchmarks/generate.py [--runs 15]

Cosmos's own modules are byte-compiled first (``compileall`` writes ``__pycache__`` even
under ``PYTHONDONTWRITEBYTECODE=1``), as an installed package is: without it every run
compiles ~70 source files and pays ~100 ms that the floor's installed libraries never do.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHECKED = [str(BIN / "cosmos"), "--log-level", "warning", "generate"]
COSMOS = [*CHECKED, "--no-check"]
FLOOR = [sys.executable, str(ROOT / "benchmarks" / "floor.py")]


def payload(services: int, containers: int = 2) -> dict:
    candidates = [
        {"serviceName": f"svc{i}", "configMode": "path" if i % 2 else "host",
         "predicate": f"/s{i}" if i % 2 else f"s{i}.example.com", "cookie": "SID" if i % 3 == 0 else None,
         "containers": [{"id": f"c{i}-{j}", "ip": f"10.{i // 250}.{i % 250}.{j + 1}:8080"} for j in range(containers)]}
        for i in range(services)
    ]
    running = [{"serviceName": c["serviceName"], "id": x["id"], "ip": x["ip"]} for c in candidates for x in c["containers"]]
    return {"tableName": "bench", "runningServices": running, "candidateServices": candidates}


def run(argv: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds (user + system) of one process.

    CPU time is much less sensitive than wall time to other work on a shared machine.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def stats(samples: list[tuple[float, int, float]]) -> dict:
    times = sorted(t for t, _, _ in samples)
    return {
        "median_s": round(statistics.median(times), 3),
        "p90_s": round(times[min(len(times) - 1, int(len(times) * 0.9))], 3),
        "cpu_median_s": round(statistics.median(c for _, _, c in samples), 3),
        "max_rss_mb": round(max(r for _, r, _ in samples) / 1024, 1),
        "runs": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    import compileall

    for tree in (ROOT / "src", ROOT / "plugins"):
        compileall.compile_dir(str(tree), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="cosmos-bench-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # the compiled template: cached by the first run, as on a host
    files = {"seed": ROOT / "examples" / "seed-payload.json"}
    for name, size in (("1k", 1000), ("10k", 10000)):
        files[name] = work / f"{name}.json"
        files[name].write_text(json.dumps(payload(size)))

    samples: dict[str, list[tuple[float, int, float]]] = {}

    def record(name: str, argv: list[str]) -> None:
        samples.setdefault(name, []).append(run(argv))

    for i in range(args.runs):
        record("floor", FLOOR)
        for name in ("seed", "1k"):
            store = f"sqlite://{work}/{name}-{i}.db"
            record(f"{name} first", [*COSMOS, str(files[name]), "--store", store])
            record(f"{name} repeat", [*COSMOS, str(files[name]), "--store", store])
        record("seed checked", [*CHECKED, str(files["seed"]), "--store", f"sqlite://{work}/seed-checked-{i}.db"])
    for i in range(max(3, args.runs // 3)):
        store = f"sqlite://{work}/10k-{i}.db"
        record("10k first", [*COSMOS, str(files["10k"]), "--store", store])
        record("10k repeat", [*COSMOS, str(files["10k"]), "--store", store])
        record("10k checked", [*CHECKED, str(files["10k"]), "--store", f"sqlite://{work}/10k-checked-{i}.db"])

    results = {name: stats(s) for name, s in samples.items()}
    floor, floor_cpu = results["floor"]["median_s"], results["floor"]["cpu_median_s"]
    print(f"{'case':<14} {'median':>8} {'p90':>8} {'over floor':>11} {'cpu':>7} {'cpu over':>9} {'peak RSS':>9}")
    for name, r in results.items():
        print(f"{name:<14} {r['median_s']:>7.3f}s {r['p90_s']:>7.3f}s {r['median_s'] - floor:>+10.3f}s "
              f"{r['cpu_median_s']:>6.3f}s {r['cpu_median_s'] - floor_cpu:>+8.3f}s {r['max_rss_mb']:>7.1f}MB")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
