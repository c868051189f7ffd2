"""Benchmark: whole ``cosmos generate`` processes on the dynamodb store against a local dynalite.

Measures, in one run and against one dynalite started here (tests/dynalite, pinned):

* the floor: a do-nothing Typer command with the same imports as ``cosmos generate``
  that also creates a boto3 DynamoDB client (``python benchmarks/dynamodb.py floor``);
* a first request storing N services (a fresh namespace in an existing table);
* the same request again (no change: 0 items written);
* a one-container change at N services.

Every figure is wall time of a whole process (median, min, max over --repeat
runs).  DynamoDB calls and items per run come from the store's own counters
(the ``dynamodb_requests`` and ``reconciled`` debug log lines).

    .venv/bin/python benchmarks/dynamodb.py --services 1000 --containers 1 --repeat 7 --markdown benchmarks/dynamodb.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COSMOS = str(Path(sys.executable).with_name("cosmos"))


def floor_command() -> None:
    """The floor: the imports ``cosmos generate`` pays for, plus a DynamoDB client; no work."""
    import typer

    app = typer.Typer(add_completion=False)

    @app.command()
    def floor() -> None:
        import boto3
        import jinja2  # noqa: F401
        import pluggy  # noqa: F401

        import cosmos_core.cli
        import cosmos_core.pipeline
        import cosmos_core.runtime  # noqa: F401
        from cosmos_core import logs

        logs.configure("json", "info")
        boto3.session.Session().client("dynamodb")

    app()


@dataclass
class Run:
    seconds: float
    cpu: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    written: int = 0
    deleted: int = 0


@dataclass
class Case:
    name: str
    target: str
    runs: list[Run] = field(default_factory=list)

    @property
    def times(self) -> list[float]:
        return [r.seconds for r in self.runs]

    @property
    def cpus(self) -> list[float]:
        return [r.cpu for r in self.runs]


def payload(table: str, services: int, containers: int, extra: int = 0) -> str:
    """``services`` services of ``containers`` each, all running; ``extra`` more containers running on s0."""
    running, candidates = [], []
    for s in range(services):
        members = [{"id": f"s{s}-c{c}", "ip": f"10.{s // 250}.{s % 250}.{c + 1}:8080"} for c in range(containers)]
        running += [{"serviceName": f"svc{s}", **m} for m in members]
        candidates.append({
            "serviceName": f"svc{s}", "configMode": "host", "predicate": f"svc{s}.example.com",
            "cookie": "SID", "containers": members,
        })
    running += [{"serviceName": "svc0", "id": f"extra{e}", "ip": f"10.200.0.{e + 1}:8080"} for e in range(extra)]
    return json.dumps({"tableName": table, "runningServices": running, "candidateServices": candidates})


def timed(command: list[str], env: dict[str, str], stdin: str | None = None) -> tuple[Run, str]:
    """Wall time and CPU time (user + sys of the reaped child) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=300, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command[:3])}...\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(elapsed, cpu), result.stderr


def generate(env: dict[str, str], store: str, text: str) -> Run:
    run, stderr = timed([COSMOS, "generate", "--store", store, "-o", os.devnull, "-"], env, text)
    for line in stderr.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("event") == "dynamodb_requests":
            run.calls = record["calls"]
        elif record.get("event") == "reconciled":
            run.written, run.deleted = record["items_written"], record["items_deleted"]
    return run


def measure(args: argparse.Namespace, endpoint_env: dict[str, str]) -> tuple[list[Case], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "AWS_"))}
    env |= endpoint_env | {"COSMOS_LOG_FORMAT": "json", "COSMOS_LOG_LEVEL": "debug", "AWS_EC2_METADATA_DISABLED": "true"}
    store = f"dynamodb://cosmos-bench-{uuid.uuid4().hex[:8]}"
    n, k = args.services, args.containers
    # Warm-up: create the table (and page caches) outside the measured runs.
    generate(env, store, payload("warmup", 1, 1))

    floor = Case("floor (Typer + same imports + boto3 client)", "-")
    first = Case(f"first request storing {n} services", "<= floor + 1.5 s")
    repeat = Case(f"repeat, no change, {n} services", "<= floor + 0.3 s, 0 items")
    change = Case(f"one-container change at {n} services", "<= 2 items")
    for _ in range(args.repeat):
        floor.runs.append(timed([sys.executable, __file__, "floor"], env)[0])
        table = f"bench{uuid.uuid4().hex[:8]}"
        base = payload(table, n, k)
        first.runs.append(generate(env, store, base))
        repeat.runs.append(generate(env, store, base))
        change.runs.append(generate(env, store, payload(table, n, k, extra=1)))
    info = {
        "services": n, "containers": k, "repeat": args.repeat, "store": store,
        "python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
    }
    return [floor, first, repeat, change], info


def fmt(seconds: float) -> str:
    return f"{seconds:.2f}"


def calls_text(run: Run) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(run.calls.items())) or "-"


def report(cases: list[Case], info: dict[str, Any]) -> str:
    floor = statistics.median(cases[0].times)
    floor_min = min(cases[0].times)
    lines = [
        (
            "| case | target | wall median s | wall min s | wall max s | median - floor median "
            "| paired median - floor | min - floor min | CPU median s "
            "| DynamoDB calls per run | items written | items deleted |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for case in cases:
        median, least = statistics.median(case.times), min(case.times)
        last, is_floor = case.runs[-1], case is cases[0]
        # Each repetition runs the floor and every case back to back: the median of the
        # per-repetition differences cancels most of the load other processes put on the machine.
        paired = statistics.median(r.seconds - f.seconds for r, f in zip(case.runs, cases[0].runs))
        lines.append(
            f"| {case.name} | {case.target} | {fmt(median)} | {fmt(least)} | {fmt(max(case.times))} "
            f"| {'-' if is_floor else fmt(median - floor)} | {'-' if is_floor else fmt(paired)} "
            f"| {'-' if is_floor else fmt(least - floor_min)} "
            f"| {fmt(statistics.median(case.cpus))} | {'-' if is_floor else calls_text(last)} "
            f"| {'-' if is_floor else last.written} | {'-' if is_floor else last.deleted} |"
        )
    lines.append("")
    lines.append(
        f"{info['services']} services x {info['containers']} containers, {info['repeat']} runs each, "
        f"Python {info['python']}, {info['cpus']} CPUs, {info['platform']}."
    )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["floor"]:
        sys.argv = sys.argv[:1]
        floor_command()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--containers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--endpoint", help="use this DynamoDB endpoint instead of starting dynalite")
    parser.add_argument("--markdown", type=Path, help="also write the table into this file's results block")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    stop: Callable[[], None] = lambda: None
    if args.endpoint:
        endpoint_env = {
            "AWS_ENDPOINT_URL_DYNAMODB": args.endpoint, "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
        }
    else:
        from tests.support.dynalite import start_dynalite

        server = start_dynalite()
        endpoint_env, stop = server.env, server.stop
    try:
        cases, info = measure(args, endpoint_env)
    finally:
        stop()
    table = report(cases, info)
    print(table)
    if args.markdown:
        write_results(args.markdown, table, f"{args.services}x{args.containers}")


def write_results(path: Path, table: str, label: str) -> None:
    """Replace the text between the ``label`` results markers of ``path`` (or append a block)."""
    begin, end = f"<!-- results:{label}:begin -->", f"<!-- results:{label}:end -->"
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text + ("\n" if text else "") + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
