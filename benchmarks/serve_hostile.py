"""Benchmark ``cosmos serve`` under hostile traffic (issue 13): how fast ``GET /healthz`` answers meanwhile.

Each scenario starts a fresh ``cosmos serve`` (SQLite store in a temporary
directory, default limits unless said) and probes ``GET /healthz`` every
100 ms on a new connection while the traffic runs:

* ``burst-N``: N concurrent authenticated ``POST /generate`` of a ~1 MB payload
  (5,000 services) to one table, repeated for ``--duration`` seconds; counts
  200s and 503s (``max_in_flight``);
* ``headers``: 4 parallel unauthenticated streams of one 16 MiB header
  (431s; the server's RSS before and after);
* ``idle``: 1,100 idle or half-sent connections against a server whose
  open-files limit is 1,024.

    .venv/bin/python benchmarks/serve_hostile.py [--duration 10] [--bursts 30,60,80]

Prints a Markdown table: probe latency p50 / p99 / max, failed probes, and
what the hostile clients got.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cosmos_core.server.testing import ServeProcess, start_serve  # noqa: E402 - after the sys.path line

TOKEN = "bench-token"


def heavy_payload(services: int = 5000) -> bytes:
    data = {"tableName": "burst", "runningServices": [], "candidateServices": [
        {"serviceName": f"service-{i:05d}", "configMode": "host", "predicate": f"service-{i:05d}.example.com",
         "cookie": "SID", "containers": [{"id": f"container-{i:05d}-a", "ip": f"10.{i // 250}.{i % 250}.1:8080"}]}
        for i in range(services)]}
    return json.dumps(data).encode()


class Prober(threading.Thread):
    """GET /healthz every ``interval`` s on a fresh connection; records latencies (s) and failures."""

    def __init__(self, server: ServeProcess, interval: float = 0.1, timeout: float = 30.0) -> None:
        super().__init__(daemon=True)
        self.server, self.interval, self.timeout = server, interval, timeout
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            start = time.monotonic()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
                conn.request("GET", "/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
                status = conn.getresponse().status
                conn.close()
                if status != 200:
                    self.failures.append(str(status))
            except OSError as exc:
                self.failures.append(type(exc).__name__)
            self.latencies.append(time.monotonic() - start)
            self.done.wait(max(0.0, self.interval - (time.monotonic() - start)))


def post(port: int, body: bytes) -> int | str:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", "/generate", body, {"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {TOKEN}"})
        status = conn.getresponse()
        status.read()
        conn.close()
        return status.status
    except OSError as exc:
        return type(exc).__name__


def burst(server: ServeProcess, clients: int, duration: float, body: bytes) -> dict[str, int]:
    answers: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def client() -> None:
        while time.monotonic() < deadline:
            status = post(server.port, body)
            with lock:
                answers[str(status)] = answers.get(str(status), 0) + 1
            if status == 503:
                time.sleep(1.0)  # Retry-After: 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def header_streams(server: ServeProcess, streams: int = 4, size: int = 16 * 1024 * 1024) -> dict[str, Any]:
    results: list[str] = []
    sent_total: list[int] = []
    before = rss_mb(server.process.pid)
    peak = [before]

    def stream() -> None:
        sent = 0
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            try:
                sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nX-Big: ")
                while sent < size:
                    sock.sendall(b"a" * 65536)
                    sent += 65536
                    peak[0] = max(peak[0], rss_mb(server.process.pid))
            except OSError:
                pass
            try:
                results.append(sock.recv(64).split(b"\r\n")[0].decode())
            except OSError as exc:
                results.append(type(exc).__name__)
        sent_total.append(sent)

    threads = [threading.Thread(target=stream) for _ in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"answers": sorted(set(results)), "sent_mb": round(max(sent_total) / 2**20, 2),
            "rss_mb": f"{before:.0f} -> peak {peak[0]:.0f}"}


def idle(server: ServeProcess, count: int = 1100, hold: float = 5.0) -> dict[str, Any]:
    with ExitStack() as stack:
        opened = 0
        for i in range(count):
            try:
                sock = stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=5))
                if i % 2:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half: ")
                opened += 1
            except OSError:
                break
        time.sleep(hold)
        return {"opened": opened}


def run(name: str, server: ServeProcess, action: Any) -> dict[str, Any]:
    prober = Prober(server)
    prober.start()
    time.sleep(0.5)
    outcome = action()
    prober.done.set()
    prober.join()
    lat = sorted(prober.latencies)
    return {
        "scenario": name,
        "probes": len(lat),
        "p50_ms": round(statistics.median(lat) * 1000, 1),
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
        "max_ms": round(lat[-1] * 1000, 1),
        "failed": len(prober.failures),
        "outcome": outcome,
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--bursts", default="30,60,80")
    parser.add_argument("--only-bursts", action="store_true", help="skip the headers and idle scenarios")
    parser.add_argument("--max-in-flight", type=int, default=None, help="COSMOS_MAX_IN_FLIGHT for the server")
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # this client opens 1,100 sockets
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    body = heavy_payload()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {"COSMOS_API_TOKEN": TOKEN, "XDG_STATE_HOME": tmp}
        if args.max_in_flight is not None:
            env["COSMOS_MAX_IN_FLIGHT"] = str(args.max_in_flight)

        def serve(index: int, nofile: int | None = None) -> ServeProcess:
            return start_serve(["--store", f"sqlite://{tmp}/s{index}.db"], env=env,
                               log_path=Path(tmp) / f"serve{index}.log", nofile=nofile)

        for index, clients in enumerate(int(n) for n in args.bursts.split(",")):
            with serve(index) as server:
                assert post(server.port, body) == 200  # the table exists; later passes reconcile 5,000 services
                rows.append(run(f"burst-{clients} ({len(body) / 1e6:.2f} MB)", server,
                                lambda s=server, c=clients: burst(s, c, args.duration, body)))
        if not args.only_bursts:
            with serve(100) as server:
                rows.append(run("headers (4 x 16 MiB)", server, lambda s=server: header_streams(s)))
            with serve(101, nofile=1024) as server:
                rows.append(run("idle (1,100 sockets, nofile 1024)", server, lambda s=server: idle(s)))
    print("| scenario | probes | healthz p50 ms | p99 ms | max ms | failed probes | hostile clients got | load avg |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in rows:
        print(f"| {r['scenario']} | {r['probes']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['failed']} "
              f"| {json.dumps(r['outcome'])} | {r['load']} |")


if __name__ == "__main__":
    main()
