"""Run a generated config in a real HAProxy on a loopback port, with named loopback backends."""

from __future__ import annotations

import http.client
import http.server
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Mapping


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Backend:
    """A loopback HTTP server that answers ``"<name> <path>"`` and sets the app's session cookie."""

    def __init__(self, name: str) -> None:
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = f"{backend.name} {self.path}".encode()
                self.send_response(200)
                self.send_header("Set-Cookie", f"SID={backend.name}-sess")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.name = name
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HAProxyRun:
    """``haproxy -db`` on ``config`` (its ``bind :80`` moved to a free loopback port).

    ``files`` are written beside the config (maps and other bundle files).
    """

    def __init__(self, haproxy_bin: str, config: str, workdir: Path, files: Mapping[str, bytes] = {}) -> None:
        self.port = free_port()
        config = config.replace("    bind :80\n", f"    bind 127.0.0.1:{self.port}\n")
        config = config.replace("    user haproxy\n    group haproxy\n    daemon\n", "")
        workdir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / name).write_bytes(data)
        cfg = workdir / "haproxy.cfg"
        cfg.write_text(config)
        self.proc = subprocess.Popen([haproxy_bin, "-db", "-f", str(cfg)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    output = self.proc.stdout.read().decode() if self.proc.stdout else ""
                    raise RuntimeError(f"haproxy did not start: {output}") from None
                time.sleep(0.05)

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
