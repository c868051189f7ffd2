"""HAProxy on the host, on a loopback port: for tests that route real requests through a generated config."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_loopback(haproxy_bin: str, config: str, path: Path, port: int, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """Run ``config`` in the foreground with its ``bind :80`` moved to ``127.0.0.1:port``; wait until it accepts.

    ``user``/``group``/``daemon`` are dropped so it runs as the test's user.
    Raises ``RuntimeError`` with HAProxy's output when it does not start.
    """
    config = config.replace("    bind :80\n", f"    bind 127.0.0.1:{port}\n")
    config = config.replace("    user haproxy\n    group haproxy\n    daemon\n", "")
    path.write_text(config)
    proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"haproxy did not start: {output}") from None
            time.sleep(0.05)


class Backend:
    """A threaded HTTP server on a free loopback port; ``GET`` answers ``answer(path)`` = (body, extra headers)."""

    def __init__(self, name: str, answer: Callable[[str], tuple[bytes, Mapping[str, str]]]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body, headers = answer(self.path)
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.name = name
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
