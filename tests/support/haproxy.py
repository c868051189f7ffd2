"""Run a generated config (and its bundle files) in the host's HAProxy on loopback ports."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def localize(config: str, runtime_socket: Path | None = None) -> str:
    """Drop ``user``/``group``/``daemon`` (tests run in the foreground) and add an admin runtime socket."""
    config = config.replace("    user haproxy\n    group haproxy\n    daemon\n", "")
    if runtime_socket is not None:
        config = config.replace("global\n", f"global\n    stats socket {runtime_socket} level admin\n", 1)
    return config


class HAProxyProcess:
    """``haproxy -db -f <dir>/haproxy.cfg``; waits until every port in ``ports`` accepts connections."""

    def __init__(self, haproxy_bin: str, config_path: Path, ports: list[int]) -> None:
        self.proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(config_path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        for port in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        self.stop()
                        raise RuntimeError(f"haproxy did not start: {self.output()}") from None
                    time.sleep(0.05)

    def output(self) -> str:
        if self.proc.poll() is None:
            return ""
        return self.proc.stdout.read().decode() if self.proc.stdout else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
