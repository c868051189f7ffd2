"""Arrival patterns: `docker run` returned -> first routed 200, for Cosmos and (optionally) EasyHAProxy.

Targets (issue 11): p50 <= 150 ms and p95 <= 300 ms for a lone container and for
containers arriving 0.1-1 s apart at random; a new service while three others
churn (each started and removed every 0.6 s): p95 <= 1 s; Cosmos's median at
most half of EasyHAProxy's (polling every 1 s) in the same run on the same engine.

Patterns (``--pattern``):

* ``lone``: one new service at a time, 1.5 s apart (the agent is idle each time);
* ``random``: new services started 0.1-1 s apart (uniform), each measured on its own;
* ``join``: a container joins the existing service ``join`` (removed again 1 s after it
  was routed); target: routable with 0 reloads, p95 <= 200 ms;
* ``churn``: three services churn (a thread each: run a container, 0.6 s later remove it,
  again) while new services are started 1.3-1.7 s apart.

The clock starts when the engine's start call returns (what `docker run -d`
returning means); a poller thread per container asks HAProxy every 5 ms with
the service's Host header until it answers 200 with that container's own page.
With ``--easyhaproxy`` the same containers also carry EasyHAProxy labels and an
``easy-haproxy`` (``--ehp-bin``; HAProxy on the host, on ``--ehp-port`` of
127.0.0.1, ``--refresh-conf 1``) is polled the same way, in parallel.

    .venv/bin/python benchmarks/agent_arrivals.py --pattern random --runs 30 [--easyhaproxy]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from agent_common import bench, summary
from tests.support.images import http_get


def poll(url: str, host: str, expect: str, since: float, timeout: float, out: dict[str, float], key: str) -> None:
    deadline = since + timeout
    while time.perf_counter() < deadline:
        try:
            response = http_get(url, {"Host": host}, timeout=1.0)
            if response.status == 200 and response.body == expect:
                out[key] = time.perf_counter() - since
                return
        except OSError:
            pass
        time.sleep(0.005)


def start_easyhaproxy(args: argparse.Namespace, workdir: Path, haproxy_container: str) -> subprocess.Popen[bytes]:
    """easy-haproxy on the host; its network discovery pinned to the Cosmos HAProxy's network (bridge)."""
    base = workdir / "ehp"
    for sub in ("haproxy/conf.d", "static", "www"):
        (base / sub).mkdir(parents=True)
    code = ("import socket; socket.gethostname = lambda: %r\n"
            "import sys; sys.argv = ['easy-haproxy', '--discover', 'docker', '--refresh-conf', '1',"
            " '--haproxy-stats-enable', 'false', '--customer-errors', 'false']\n"
            "from easyhaproxy.main import main; main()") % haproxy_container
    env = {**os.environ, "EASYHAPROXY_BASE_PATH": str(base), "PATH": f"{Path(args.ehp_python).parent}:{os.environ['PATH']}"}
    log = (workdir / "ehp.log").open("ab")
    return subprocess.Popen([args.ehp_python, "-c", code], stdout=log, stderr=log, env=env, start_new_session=True)


def stop_ehp_haproxy(workdir: Path) -> None:
    """Stop the HAProxy that easy-haproxy started (its pid file is fixed), if it reads our config."""
    try:
        pid = int(Path("/run/haproxy.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return
    if str(workdir / "ehp") in cmdline:
        os.kill(pid, signal.SIGTERM)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pattern", choices=("lone", "random", "churn", "join"), default="random")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--agent-args", default="")
    parser.add_argument("--easyhaproxy", action="store_true")
    parser.add_argument("--keep-logs", default=None, help="copy the agent's (and easy-haproxy's) log into this directory")
    parser.add_argument("--ehp-python", default="/tmp/ehp-venv/bin/python")
    parser.add_argument("--ehp-port", type=int, default=18000 + os.getpid() % 1000)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cosmos: dict[str, float] = {}
    ehp: dict[str, float] = {}
    pollers: list[threading.Thread] = []
    stop_churn = threading.Event()
    ehp_proc = None
    with bench(f"arr{args.pattern[:2]}") as b:
        b.start_agent(*args.agent_args.split())
        def labels(service: str) -> dict[str, str]:
            extra = {}
            if args.easyhaproxy:
                extra = {f"easyhaproxy.{service}.host": f"{service}.test", f"easyhaproxy.{service}.port": str(args.ehp_port),
                         f"easyhaproxy.{service}.localport": "8080"}
            return {**extra, "cosmos.service": service, "cosmos.predicate": f"{service}.test", "cosmos.port": "8080"}

        if args.easyhaproxy:
            # easy-haproxy refuses to start with no labelled container (its empty config fails `haproxy -c`)
            anchor = f"{b.prefix}-anchor"
            b.client.containers.run(b.backend_image, detach=True, name=anchor, hostname=anchor,
                                    labels={**b.labels(), **labels("anchor"), "cosmos-test": "1"})
            ehp_proc = start_easyhaproxy(args, b.workdir, f"{b.prefix}-haproxy")
            time.sleep(4.0)


        def churner(index: int) -> None:
            n = 0
            while not stop_churn.is_set():
                name = f"{b.prefix}-churn{index}-{n}"
                container = b.client.containers.create(b.backend_image, name=name, hostname=name,
                                                       labels={**b.labels(), **labels(f"churn{index}"), "cosmos-test": "1"})
                container.start()
                stop_churn.wait(0.6)
                container.remove(force=True)
                n += 1

        churners = []
        if args.pattern == "churn":
            churners = [threading.Thread(target=churner, args=(i,), daemon=True) for i in range(3)]
            for thread in churners:
                thread.start()
            time.sleep(3.0)
        if args.pattern == "join":
            b.client.containers.run(b.backend_image, detach=True, name=f"{b.prefix}-join-base", hostname=f"{b.prefix}-join-base",
                                    labels={**b.labels(), **labels("join"), "cosmos-test": "1"})
            while not b.routed("join.test", f"{b.prefix}-join-base\n"):
                time.sleep(0.05)
            time.sleep(1.0)
        before = len(b.events("reload"))
        for run in range(args.runs):
            service = "join" if args.pattern == "join" else f"run{run}"
            name = f"{b.prefix}-run{run}"
            container = b.client.containers.create(b.backend_image, name=name, hostname=name,
                                                   labels={**b.labels(), **labels(service), "cosmos-test": "1"})
            container.start()
            since = time.perf_counter()
            expect = f"{name}\n"
            targets = [(f"http://{b.haproxy_ip}/", cosmos)]
            if args.easyhaproxy:
                targets.append((f"http://127.0.0.1:{args.ehp_port}/", ehp))
            for url, out in targets:
                thread = threading.Thread(target=poll, args=(url, f"{service}.test", expect, since, args.timeout, out, name))
                thread.start()
                pollers.append(thread)
            if args.pattern in ("lone", "join"):
                for thread in pollers[-len(targets):]:
                    thread.join()
                time.sleep(1.0 if args.pattern == "join" else 1.5)
                if args.pattern == "join":
                    container.remove(force=True)
                    time.sleep(1.0)
            elif args.pattern == "random":
                time.sleep(rng.uniform(0.1, 1.0))
            else:
                time.sleep(rng.uniform(1.3, 1.7))
        for thread in pollers:
            thread.join()
        stop_churn.set()
        for thread in churners:
            thread.join()
        reloads = len(b.events("reload")) - before
        if ehp_proc is not None:
            os.killpg(ehp_proc.pid, signal.SIGTERM)
            ehp_proc.wait(10)
            stop_ehp_haproxy(b.workdir)
        if args.keep_logs:
            import shutil

            for log in ("agent.log", "ehp.log"):
                if (b.workdir / log).exists():
                    shutil.copy(b.workdir / log, Path(args.keep_logs) / f"{args.pattern}-{log}")
        ehp_reloads = (b.workdir / "ehp.log").read_text(errors="replace").count("New configuration found") if args.easyhaproxy else None
    result: dict[str, Any] = {
        "pattern": args.pattern,
        "agent_args": args.agent_args,
        "runs": args.runs,
        "cosmos_not_routed": args.runs - len(cosmos),
        "cosmos_run_returned_to_200_s": summary(list(cosmos.values())) if cosmos else None,
        "cosmos_reloads": reloads,
    }
    if args.easyhaproxy:
        result |= {
            "easyhaproxy_not_routed": args.runs - len(ehp),
            "easyhaproxy_run_returned_to_200_s": summary(list(ehp.values())) if ehp else None,
            "easyhaproxy_reloads": ehp_reloads,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
