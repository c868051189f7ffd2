"""A real HAProxy 2.6 in master-worker mode on loopback, with a stats socket and a master CLI."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.haproxy import Backend
from tests.support.net import free_port, stop_process, wait_until


@dataclass
class Proxy:
    """One HAProxy: its directory, config path, sockets and frontend port."""

    dir: Path
    config: Path
    admin: Path  # stats socket (unix)
    master: Path  # master CLI (unix)
    tcp_port: int  # stats socket (tcp, loopback)
    port: int  # the frontend
    proc: subprocess.Popen[bytes]

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    wait_until(condition, what, timeout, interval=0.02)


def _accepts(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
        return True
    except OSError:
        return False


@pytest.fixture
def start_haproxy(haproxy_bin: str, tmp_path: Path) -> Iterator[Callable[[str], Proxy]]:
    """``start_haproxy(body)``: HAProxy running ``global`` (sockets) + ``body`` on a free port ``{port}``."""
    started: list[subprocess.Popen[bytes]] = []

    def start(body: str) -> Proxy:
        port, tcp_port = free_port(), free_port()
        admin, master = tmp_path / "admin.sock", tmp_path / "master.sock"
        config = tmp_path / "haproxy.cfg"
        config.write_text(
            "global\n"
            f"    stats socket {admin} level admin\n"
            f"    stats socket ipv4@127.0.0.1:{tcp_port} level admin\n"
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n"
            + body.replace("{port}", str(port)).replace("{dir}", str(tmp_path))
        )
        log = (tmp_path / "haproxy.log").open("ab")
        proc = subprocess.Popen([haproxy_bin, "-W", "-db", "-S", str(master), "-f", str(config)], stdout=log, stderr=log)
        started.append(proc)
        wait_for(lambda: _accepts(admin) and _accepts(master), what="haproxy sockets")
        return Proxy(tmp_path, config, admin, master, tcp_port, port, proc)

    yield start
    for proc in started:
        stop_process(proc)


@pytest.fixture
def http_backends() -> Iterator[Callable[[str], int]]:
    """``backend(name)``: an HTTP server on a free loopback port answering ``name``; returns the port."""
    servers: list[Backend] = []

    def start(name: str) -> int:
        server = Backend(name, lambda _path: (name.encode(), {}))
        servers.append(server)
        return int(server.port)

    yield start
    for server in servers:
        server.close()
