"""From ``docker run`` of a container whose host has no certificate to the first verified HTTPS 200.

Real parts: dockerd (backend containers), HAProxy 2.6 on the host (master-worker,
``host`` reloader), ``cosmos watch`` with ACME on, pebble + pebble-challtestsrv
(``PEBBLE_VA_NOSLEEP=1``).  Each run starts one backend labelled with a new host
name and polls HTTPS with SNI for that name, verifying the chain against
pebble's root, until the container answers; the time from just before
``docker run`` to that 200 is one sample.  The clock covers the whole chain:
container start, Docker event, agent pass + reload (new service), ACME order
(account exists after the first run), challenge answered by HAProxy from its
map, certificate installed through the runtime API.

    .venv/bin/python benchmarks/https_latency.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.agent_common import cleanup, read_events, summary, wait_event  # noqa: E402
from tests.support.haproxy import free_port  # noqa: E402
from tests.support.images import build_backend_image, run_test_container  # noqa: E402
from tests.support.pebble import Pebble  # noqa: E402
from tests.support.tls import http_get, https_get  # noqa: E402

TEMPLATE = ROOT / "src" / "cosmos_core" / "builtin" / "templates" / "haproxy.cfg.j2"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    import docker

    client = docker.from_env(timeout=300)
    prefix = f"cosmos-bench-https-{uuid.uuid4().hex[:6]}"
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        pebble = Pebble(work / "pebble").start()
        try:
            image = build_backend_image(client)
            sock, https_port = work / "admin.sock", free_port()
            template = work / "haproxy.cfg.j2"
            template.write_text(TEMPLATE.read_text()
                                .replace("    user haproxy\n    group haproxy\n    daemon\n",
                                         f"    stats socket {sock} level admin\n"))
            config = work / "etc" / "haproxy.cfg"
            env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
            env |= {
                "COSMOS_LOG_FORMAT": "json", "COSMOS_STORE": f"sqlite://{work}/state.db",
                "COSMOS_TEMPLATE": str(template), "COSMOS_BIND": f"127.0.0.1:{pebble.http_port}",
                "COSMOS_HTTPS_BIND": f"127.0.0.1:{https_port}", "COSMOS_ACME_DIRECTORY": pebble.directory,
                "COSMOS_ACME_EMAIL": "ops@example.test", "COSMOS_ACME_CA_BUNDLE": pebble.api_ca,
                "COSMOS_HAPROXY_SOCKET": str(sock), "COSMOS_HAPROXY_CONFIG": str(config),
            }
            cli = [sys.executable, "-c", "from cosmos_core.cli import main; main()"]
            (work / "empty.json").write_text(json.dumps({"table": "default"}))
            subprocess.run([*cli, "generate", str(work / "empty.json"), "-o", str(config)], env=env, check=True,
                           capture_output=True)
            haproxy = subprocess.Popen(["haproxy", "-W", "-db", "-f", str(config)],
                                       stdout=open(work / "haproxy.log", "wb"), stderr=subprocess.STDOUT)
            procs.append(haproxy)
            while not sock.exists():
                time.sleep(0.05)
            env |= {"COSMOS_RELOADER": "host", "COSMOS_RELOAD_COMMAND": f"kill -USR2 {haproxy.pid}"}
            log_path = work / "agent.log"
            agent = subprocess.Popen([*cli, "watch", "--name-filter", prefix], env=env,
                                     stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
            procs.append(agent)
            wait_event(log_path, "reload", 1, 30.0, also=("reload_skipped", "pass_failed"))
            root = pebble.root_pem()
            samples, routed_http = [], []
            for i in range(args.runs):
                name = f"{prefix}-{i}"
                host = f"r{i}.example.test"
                started = time.perf_counter()
                run_test_container(client, image, name=name, hostname=name, labels={
                    "cosmos-bench": prefix, "cosmos.service": f"r{i}", "cosmos.predicate": host,
                    "cosmos.port": "8080"})
                deadline = time.monotonic() + 60
                http_done = None
                while True:
                    if http_done is None:
                        try:
                            status, _, body = http_get(pebble.http_port, host, timeout=2)
                            if status == 200 and body.strip() == name:
                                http_done = time.perf_counter() - started
                        except OSError:
                            pass
                    try:
                        status, _, body, _, _ = https_get(https_port, host, cadata=root, timeout=2)
                        if status == 200 and body.strip() == name:
                            break
                    except (ssl.SSLError, OSError):
                        pass
                    if time.monotonic() > deadline:
                        kept = Path(tempfile.gettempdir()) / f"{prefix}-agent.log"
                        kept.write_bytes(log_path.read_bytes())
                        raise TimeoutError(f"{host}: no verified HTTPS 200 in 60 s; agent log kept in {kept}")
                    time.sleep(0.02)
                samples.append(time.perf_counter() - started)
                routed_http.append(http_done if http_done is not None else samples[-1])
                print(f"run {i}: HTTPS {samples[-1]:.3f} s (HTTP routed at {routed_http[-1]:.3f} s)", flush=True)
            stats = summary(samples)
            issued = read_events(log_path, "certificate_issued")
            reloads = read_events(log_path, "reload")
            print(json.dumps({"seconds": stats, "http_routed_seconds": summary(routed_http), "certificates_issued": len(issued),
                              "issue_ms_p50": sorted(e["ms"] for e in issued)[len(issued) // 2] if issued else None,
                              "reloads": len(reloads)}, indent=2))
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(30)
            pebble.stop()
            cleanup(client, prefix)
            client.close()


if __name__ == "__main__":
    main()
