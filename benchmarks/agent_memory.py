"""Agent memory with many containers: RSS of `cosmos watch` with 500 labelled containers.

Target (issue 4): RSS <= 80 MB with 500 containers.

The agent starts first; 500 labelled busybox containers (500 services, one
container each) are then created and started from 8 threads, so the agent
follows the whole ramp-up through events.  Once all 500 are in the store, the
agent's current RSS (VmRSS) and peak RSS (VmHWM) are read from /proc; the
routing of a sample of services is checked through HAProxy.

    .venv/bin/python benchmarks/agent_memory.py [--containers 500]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent_common import bench


def rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--agent-args", default="")
    args = parser.parse_args()
    with bench("mem") as b:
        b.start_agent(*args.agent_args.split())
        assert b.agent is not None
        idle = rss_mb(b.agent.pid)
        t0 = time.perf_counter()

        def start(index: int) -> None:
            b.backend(f"m{index}", service=f"m{index}", predicate=f"m{index}.test", port="8080")

        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(start, range(args.containers)))
        started = time.perf_counter() - t0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            synced = b.events("reconciled")
            if synced and synced[-1]["services"] == args.containers and b.events("reload")[-1:] and \
                    b.events("reload")[-1]["services"] == args.containers:
                break
            time.sleep(0.5)
        time.sleep(2.0)
        loaded = rss_mb(b.agent.pid)
        sample = [0, args.containers // 2, args.containers - 1]
        routed = {i: b.routed(f"m{i}.test", f"{b.prefix}-m{i}\n") for i in sample}
        last = b.events("reload")[-1]
    result = {
        "agent_args": args.agent_args,
        "containers": args.containers,
        "start_all_s": round(started, 1),
        "services_in_last_reload": last["services"],
        "reloads": last["reloads"],
        "sample_routed": routed,
        "rss_idle_mb": idle.get("VmRSS"),
        "rss_mb": loaded.get("VmRSS"),
        "peak_rss_mb": loaded.get("VmHWM"),
        "pass": last["services"] == args.containers and loaded.get("VmHWM", 1e9) <= 80,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
