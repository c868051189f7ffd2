"""``cosmos status`` counts HAProxy's live worker processes through the master CLI (``show proc``), host HAProxy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cosmos_core.haproxy.runtime_api import RuntimeAPI, RuntimeAPIError, UnixSocket, show_proc
from tests.integration.haproxy.conftest import Proxy, wait_for

COSMOS = [sys.executable, "-c", "from cosmos_core.cli import main; main()"]


def procs(api: RuntimeAPI) -> list:
    """``show proc``, or [] while the master re-executes itself (a reload resets the connection)."""
    try:
        return show_proc(api)
    except RuntimeAPIError:
        return []


def made_store(tmp_path: Path) -> str:
    """A SQLite store in ``tmp_path``, made as an operator makes one: by a ``cosmos generate`` pass
    (``cosmos status`` never creates one, and a pass creates the file only when it stores)."""
    url = f"sqlite://{tmp_path}/state.db"
    subprocess.run([*COSMOS, "generate", "--no-check", "--store", url, "-"], input='{"table": "empty", "running": []}',
                   capture_output=True, text=True, check=True, timeout=60)
    assert (tmp_path / "state.db").exists()
    return url


def status(tmp_path: Path, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")} | env
    done = subprocess.run([*COSMOS, "status", "--json", "--store", made_store(tmp_path)],
                          capture_output=True, text=True, env=environ, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.fixture
def held() -> Iterator[tuple[int, Callable[[], None]]]:
    """A TCP server that accepts and holds every connection (a long download, say) until released."""
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()

    def release() -> None:
        for conn in conns:
            conn.close()

    yield server.getsockname()[1], release
    stop.set()
    release()
    server.close()


def test_status_counts_the_current_and_the_old_worker_a_long_connection_keeps_alive(
    start_haproxy: Callable[[str], Proxy], held: tuple[int, Callable[[], None]], tmp_path: Path
) -> None:
    port, release = held
    proxy = start_haproxy(f"listen tunnel\n    mode tcp\n    bind 127.0.0.1:{{port}}\n    server s 127.0.0.1:{port}\n")
    env = {"COSMOS_RELOADER": "host", "COSMOS_MASTER_SOCKET": str(proxy.master)}
    api = RuntimeAPI(UnixSocket(str(proxy.master)), master=True)
    wait_for(lambda: [p.kind for p in procs(api)] == ["master", "worker"], what="one worker")

    report = status(tmp_path, **env)["haproxy"]
    assert (report["workers"], report["current"], report["old"]) == (1, 1, 0)
    assert report["reloader"] == "host" and report["master_socket"] == str(proxy.master)

    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)  # held open through the reload
    try:
        client.sendall(b"x")
        proxy.reload()
        wait_for(lambda: any(p.old for p in procs(api)), what="an old worker")
        report = status(tmp_path, **env)["haproxy"]
        assert (report["workers"], report["current"], report["old"]) == (2, 1, 1)
        assert len(set(report["pids"])) == 2
        text = subprocess.run([*COSMOS, "status", "--store", made_store(tmp_path)], capture_output=True,
                              text=True, env={k: v for k, v in os.environ.items() if not k.startswith("COSMOS_")} | env,
                              timeout=60, check=True).stdout
        assert "haproxy: 2 live worker process(es) (1 current, 1 old)" in text
    finally:
        client.close()
        release()
    wait_for(lambda: status(tmp_path, **env)["haproxy"]["workers"] == 1, what="the old worker to finish")


def test_status_without_a_master_cli_says_nothing_and_an_unreachable_one_says_why(tmp_path: Path) -> None:
    assert "haproxy" not in status(tmp_path)
    report = status(tmp_path, COSMOS_RELOADER="host", COSMOS_MASTER_SOCKET=str(tmp_path / "no.sock"))["haproxy"]
    assert report["workers"] is None and "no.sock" in report["error"]
