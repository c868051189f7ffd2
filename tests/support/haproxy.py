"""The host's HAProxy on loopback ports, running a generated config, with loopback HTTP backends.

- :func:`localize` / :class:`HAProxyProcess`: run a config file as it is (its binds already on loopback).
- :func:`start_loopback` / :class:`HAProxyRun`: run a config whose ``bind :80`` is moved to a loopback port.
- :class:`Backend`: a threaded HTTP server on a free loopback port.
"""

from __future__ import annotations

import http.client
import http.server
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.support.net import free_port, stop_process, wait_port

__all__ = ["Backend", "HAProxyProcess", "HAProxyRun", "free_port", "localize", "start_loopback"]

_DAEMON_LINES = "    user haproxy\n    group haproxy\n    daemon\n"


def localize(config: str, runtime_socket: Path | None = None) -> str:
    """Drop ``user``/``group``/``daemon`` (tests run in the foreground) and add an admin runtime socket."""
    config = config.replace(_DAEMON_LINES, "")
    if runtime_socket is not None:
        config = config.replace("global\n", f"global\n    stats socket {runtime_socket} level admin\n", 1)
    return config


def _on_loopback(config: str, port: int) -> str:
    """``config`` with its ``bind :80`` moved to ``127.0.0.1:port``, foreground-ready (see :func:`localize`)."""
    return localize(config.replace("    bind :80\n", f"    bind 127.0.0.1:{port}\n"))


def _output(proc: subprocess.Popen[bytes]) -> str:
    return proc.stdout.read().decode() if proc.stdout else ""


def _start(haproxy_bin: str, config_path: Path, ports: list[int], timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """``haproxy -db -f config_path``; wait until every port in ``ports`` accepts connections.

    Raises ``RuntimeError`` with HAProxy's output when it exits or does not listen within ``timeout`` seconds.
    """
    proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    for port in ports:
        if not wait_port(port, proc, max(0.0, deadline - time.monotonic())):
            proc.kill()
            proc.wait()
            raise RuntimeError(f"haproxy did not start: {_output(proc)}")
    return proc


class HAProxyProcess:
    """``haproxy -db -f <dir>/haproxy.cfg``; waits until every port in ``ports`` accepts connections."""

    def __init__(self, haproxy_bin: str, config_path: Path, ports: list[int]) -> None:
        self.proc = _start(haproxy_bin, config_path, ports)

    def output(self) -> str:
        """HAProxy's output once it has exited; "" while it runs."""
        if self.proc.poll() is None:
            return ""
        return _output(self.proc)

    def stop(self) -> None:
        stop_process(self.proc)


def start_loopback(haproxy_bin: str, config: str, path: Path, port: int, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """Run ``config`` in the foreground with its ``bind :80`` moved to ``127.0.0.1:port``; wait until it accepts.

    ``user``/``group``/``daemon`` are dropped so it runs as the test's user.
    Raises ``RuntimeError`` with HAProxy's output when it does not start.
    """
    path.write_text(_on_loopback(config, port))
    return _start(haproxy_bin, path, [port], timeout)


class HAProxyRun:
    """``haproxy -db`` on ``config`` (its ``bind :80`` moved to a free loopback port).

    ``files`` are written beside the config (maps and other bundle files).
    """

    def __init__(self, haproxy_bin: str, config: str, workdir: Path, files: Mapping[str, bytes] = {}) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / name).write_bytes(data)
        self.proc = start_loopback(haproxy_bin, config, workdir / "haproxy.cfg", self.port)

    def get(self, path: str = "/", host: str = "none.example.com", cookie: str | None = None):
        """``(status, body, Set-Cookie)`` of one GET; ``path`` is sent as given (no re-encoding)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        headers = {"Host": host}
        if cookie:
            headers["Cookie"] = cookie
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        return response.status, body, response.getheader("Set-Cookie")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


Answer = Callable[[str], tuple[bytes, Mapping[str, str]]]


class Backend:
    """A threaded HTTP server on a free loopback port; ``GET`` answers ``answer(path)`` = (body, extra headers).

    Without ``answer`` it answers ``"<name> <path>"`` and sets the app's session cookie ``SID=<name>-sess``.
    """

    def __init__(self, name: str, answer: Answer | None = None) -> None:
        self.name = name
        respond = answer or self._default_answer

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body, headers = respond(self.path)
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _default_answer(self, path: str) -> tuple[bytes, Mapping[str, str]]:
        return f"{self.name} {path}".encode(), {"Set-Cookie": f"SID={self.name}-sess"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
