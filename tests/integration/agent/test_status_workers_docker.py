"""``cosmos status`` counts the live HAProxy workers of an HAProxy container (master CLI ``show proc`` through
``docker exec`` + ``nc``, as the docker-exec reloader reaches it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from cosmos_reload_docker_exec.reloader import DockerExecReloader

from cosmos_core.bundle import Bundle
from cosmos_core.settings import Settings
from tests.integration.agent.conftest import COSMOS, Env
from tests.integration.haproxy.test_status_workers import made_store
from tests.support.images import HAPROXY_CFG, container_ip, wait_for_log

MASTER = "ipv4@127.0.0.1:9998"


def status(tmp_path: Path, container: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")}
    environ |= {"COSMOS_RELOADER": "docker-exec", "COSMOS_HAPROXY_CONTAINER": container, "COSMOS_MASTER_SOCKET": MASTER}
    done = subprocess.run([*COSMOS, "status", "--json", "--store", made_store(tmp_path)],
                          capture_output=True, text=True, env=environ, timeout=60, check=True)
    return json.loads(done.stdout)["haproxy"]


def until(condition, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_status_counts_the_workers_of_an_haproxy_container_through_its_master_cli(env: Env, tmp_path: Path) -> None:
    proxy = env.haproxy(command=["haproxy", "-W", "-db", "-S", MASTER, "-f", HAPROXY_CFG])
    holder = env.backend("holder")
    holder.exec_run(["sh", "-c", "nc -l -p 9000 >/dev/null &"], detach=True)
    tunnel = ("defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n"
              f"listen tunnel\n    bind :7000\n    server s {container_ip(holder)}:9000\n")
    reloader = DockerExecReloader(Settings(options={"haproxy_container": proxy.name, "master_socket": MASTER}))
    assert reloader.apply(Bundle.of(tunnel), None).reloaded
    wait_for_log(proxy, "Loading success", count=2)
    first = until(lambda: (r := status(tmp_path, proxy.name))["workers"] == 1 and r)
    assert first and (first["current"], first["old"]) == (1, 0)

    client = socket.create_connection((container_ip(proxy), 7000), timeout=5)  # held by the old worker
    try:
        client.sendall(b"x")
        assert reloader.apply(Bundle.of(tunnel + "# a reload\n"), None).reloaded
        wait_for_log(proxy, "Loading success", count=3)
        second = until(lambda: (r := status(tmp_path, proxy.name))["workers"] == 2 and r)
        assert second and (second["current"], second["old"]) == (1, 1)
        assert first["pids"][0] in second["pids"]  # the old worker is the one from before the reload
    finally:
        client.close()
