"""Failed requests under continuous HTTP load while the agent reloads HAProxy >= 50 times.

Target (issue 4): 0 failed requests, on services that keep at least one running
container, while other containers churn and the agent reloads >= 50 times.

Two backends of service ``stable`` stay up; ``wrk`` (Debian's) loads HAProxy
with ``Host: stable.test`` for a fixed duration while a churn loop starts and
removes containers of other services; each start and each removal makes the
agent reload.  A failed request is any socket error (connect, read, write,
timeout: a request unanswered after ``--timeout``, 10 s) or any non-2xx/3xx
response that wrk reports.

    .venv/bin/python benchmarks/agent_reload_load.py [--duration 60] [--reloads 55]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import time

from agent_common import bench


def parse_wrk(text: str) -> dict[str, int]:
    """Requests, socket errors and non-2xx/3xx responses from wrk's report."""
    requests = re.search(r"(\d+) requests in", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()))) if errors else {}
    return {
        "requests": int(requests.group(1)) if requests else 0,
        **{f"socket_{k}": v for k, v in socket.items()},
        "non_2xx_3xx": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60, help="wrk duration in seconds")
    parser.add_argument("--reloads", type=int, default=55, help="stop churning after this many reloads")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout in seconds")
    parser.add_argument("--close", action="store_true", help="send 'Connection: close' (no keep-alive)")
    parser.add_argument("--agent-args", default="")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    with bench("load") as b:
        for index in range(2):
            b.backend(f"stable{index}", service="stable", predicate="stable.test", port="8080")
        b.start_agent(*args.agent_args.split())
        while not any(b.routed("stable.test", f"{b.prefix}-stable{i}\n") for i in (0, 1, 0)):
            time.sleep(0.05)
        time.sleep(1.0)
        before = len(b.events("reload"))
        headers = ["-H", "Host: stable.test"] + (["-H", "Connection: close"] if args.close else [])
        load = subprocess.Popen(
            [wrk, "-t2", f"-c{args.connections}", f"-d{args.duration}s", f"--timeout={args.timeout}s", *headers,
             f"http://{b.haproxy_ip}/"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        started, churned = time.monotonic(), 0
        while load.poll() is None and len(b.events("reload")) - before < args.reloads:
            if time.monotonic() - started > args.duration - 3:
                break
            container = b.backend(f"churn{churned}", service=f"churn{churned % 3}", predicate=f"churn{churned % 3}.test", port="8080")
            time.sleep(0.4)
            container.remove(force=True)
            time.sleep(0.4)
            churned += 1
        reloads = len(b.events("reload")) - before
        report, _ = load.communicate(timeout=args.duration + 30)
        failures = b.events("pass_failed")
    counts = parse_wrk(report)
    failed = sum(v for k, v in counts.items() if k.startswith("socket_")) + counts["non_2xx_3xx"]
    result = {
        "agent_args": args.agent_args,
        "keep_alive": not args.close,
        "duration_s": args.duration,
        "churned_containers": churned,
        "reloads_during_load": reloads,
        "agent_pass_failures": len(failures),
        **counts,
        "failed_requests": failed,
        "pass": failed == 0 and reloads >= 50,
    }
    print(report)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
