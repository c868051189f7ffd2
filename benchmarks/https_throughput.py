"""HTTPS vs HTTP requests per second through HAProxy for one of 1,000 services (wrk).

Same run, same HAProxy build, same backend (busybox httpd on loopback): the
config holds 1,000 host-routed services; the HTTPS frontend serves either one
certificate (the measured service's) or 1,000 (one per service), to show that
routing and SNI selection do not grow with the number of certificates.  Four
modes per case: HTTP and HTTPS, keep-alive, and a new connection (so a TLS
handshake) per request.  wrk sends SNI ``localhost`` (the URL host); the
measured service's certificate carries ``localhost`` besides its own name, and
the Host header selects the service.

    .venv/bin/python benchmarks/https_throughput.py --duration 10 [--local]
    .venv/bin/python benchmarks/https_throughput.py --runs 1 --duration 1 --connections 4   # smoke
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.haproxy import HAProxyProcess, free_port, localize  # noqa: E402
from tests.support.tls import make_ca  # noqa: E402

SERVICES = 1000
MEASURED = 500


def wrk(url: str, host: str, duration: int, connections: int, close: bool) -> dict[str, float]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-H", f"Host: {host}", url]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return {"rps": rps, "requests": total, "failed": failed, "non_2xx": int(bad.group(1)) if bad else 0}


def start_case(work: Path, certs: int, backend_port: int, local: bool = False) -> tuple[HAProxyProcess, int, int]:
    """Generate the 1,000-service config with ``certs`` certificates and start HAProxy on it.

    ``local``: every backend answers 200 itself (``http-request return``) instead of proxying to
    the busybox backend, so the figures are HAProxy's own routing and TLS cost, not the backend's.
    """
    ca = make_ca()
    certs_dir = work / f"certs-{certs}"
    certs_dir.mkdir()
    for i in range(SERVICES):
        if certs == 1 and i != MEASURED:
            continue
        names = [f"s{i}.example.test"] + (["localhost"] if i == MEASURED else [])
        (certs_dir / f"s{i}.pem").write_bytes(ca.issue(names))
    payload = work / "payload.json"
    payload.write_text(json.dumps({"table": "bench", "candidates": [
        {"serviceName": f"s{i}", "configMode": "host", "predicate": f"s{i}.example.test",
         "containers": [{"id": f"c{i}", "ip": f"127.0.0.1:{backend_port}"}]} for i in range(SERVICES)]}))
    http_port, https_port = free_port(), free_port()
    out = work / f"bundle-{certs}" / "haproxy.cfg"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")},
           "COSMOS_BIND": f"127.0.0.1:{http_port}", "COSMOS_HTTPS_BIND": f"127.0.0.1:{https_port}",
           "COSMOS_LOG_LEVEL": "warning"}
    subprocess.run([sys.executable, "-c", "from cosmos_core.cli import main; main()", "generate", str(payload),
                    "--store", f"sqlite://{work}/s-{certs}.db", "--certs-dir", str(certs_dir), "-o", str(out)],
                   env=env, check=True, capture_output=True)
    config = localize(out.read_text())
    if local:
        config = re.sub(r"(?m)^    server (\S+) .*$", r"    http-request return status 200 content-type text/plain string \1",
                        config)
    out.write_text(config)
    proc = HAProxyProcess(shutil.which("haproxy") or "/usr/sbin/haproxy", out, [http_port, https_port])
    return proc, http_port, https_port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--local", action="store_true",
                        help="backends answer 200 inside HAProxy: measure HAProxy's TLS and routing cost, not busybox's")
    parser.add_argument("--rounds", "--runs", type=int, default=3, dest="rounds",
                        help="interleaved rounds; the median is reported (smoke: --runs 1 --duration 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cosmos-https-bench-") as tmp:
        work = Path(tmp)
        www = work / "www"
        www.mkdir()
        (www / "index.html").write_text("ok\n")
        backend_port = free_port()
        backend = subprocess.Popen(["/bin/busybox", "httpd", "-f", "-p", f"127.0.0.1:{backend_port}", "-h", str(www)])
        cases = {}
        try:
            for n in (1, SERVICES):
                cases[f"{n} certificate(s)"] = start_case(work, n, backend_port, args.local)
            host = f"s{MEASURED}.example.test"
            runs: dict[str, dict[str, list[dict]]] = {case: {} for case in cases}
            for _ in range(args.rounds):  # interleaved, so machine noise hits every case alike
                for close in (False, True):
                    suffix = "new connection per request" if close else "keep-alive"
                    for case, (_, http_port, https_port) in cases.items():
                        for mode, url in ((f"HTTP, {suffix}", f"http://127.0.0.1:{http_port}/"),
                                          (f"HTTPS, {suffix}", f"https://localhost:{https_port}/")):
                            runs[case].setdefault(mode, []).append(
                                wrk(url, host, args.duration, args.connections, close))
            report = {case: {mode: {"rps": statistics.median(r["rps"] for r in rs),
                                    "requests": sum(r["requests"] for r in rs),
                                    "failed": sum(r["failed"] for r in rs),
                                    "non_2xx": sum(r["non_2xx"] for r in rs)} for mode, rs in modes.items()}
                      for case, modes in runs.items()}
        finally:
            for proc, _, _ in cases.values():
                proc.stop()
            backend.terminate()
            backend.wait()
    print(json.dumps(report, indent=2))
    print("\n| certificates | mode | req/s (median) | requests | failed |\n| --- | --- | --- | --- | --- |")
    for case, modes in report.items():
        for mode, r in modes.items():
            print(f"| {case} | {mode} | {r['rps']:.0f} | {r['requests']} | {r['failed']} |")
    one, many = (report[f"{n} certificate(s)"] for n in (1, SERVICES))
    print("\nreq/s with 1,000 certificates / with 1:",
          ", ".join(f"{mode} {many[mode]['rps'] / one[mode]['rps']:.2f}" for mode in one))


if __name__ == "__main__":
    main()
