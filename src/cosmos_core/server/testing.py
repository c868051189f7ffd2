"""Start a real ``cosmos serve`` in a subprocess (for tests and benchmarks).

The server listens on a free loopback port (``--port 0``); its JSON log goes
to a file, and the URL is read from its ``serving`` log line, so there is no
race on picking a port and no pipe that could fill up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

START_TIMEOUT_S = 20.0
CLI = "import sys; from cosmos_core.cli import main; sys.argv[0] = 'cosmos'; main()"


class ServeFailed(RuntimeError):
    """``cosmos serve`` exited or did not report its address in time."""


@dataclass
class ServeProcess:
    """A running ``cosmos serve``: its base URL, process and log file."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = field(default=False)

    def log_events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are skipped)."""
        return read_events(self.log_path)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if not self.stopped:
            self.stopped = True
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout)
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def start_serve(
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    timeout: float = START_TIMEOUT_S,
    python: str = sys.executable,
    nofile: int | None = None,
) -> ServeProcess:
    """Run ``cosmos serve --host 127.0.0.1 --port 0 ARGS`` and wait until it listens.

    ``env`` is added to this process's environment; logs are JSON, in
    ``log_path`` (a temporary file when omitted).  ``nofile`` lowers the
    server's open-files limit (``RLIMIT_NOFILE``, soft and hard).
    """
    if log_path is None:
        import tempfile

        handle, name = tempfile.mkstemp(prefix="cosmos-serve-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    full_env = {**os.environ, **(env or {}), "COSMOS_LOG_FORMAT": "json"}
    command = [python, "-c", CLI, "serve", "--host", "127.0.0.1", "--port", "0", *args]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, env=full_env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=log_file,
                                   preexec_fn=None if nofile is None else (lambda: _limit_files(nofile)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in read_events(log_path):
            if event.get("event") == "serving":
                return ServeProcess(str(event["url"]), int(event["port"]), process, log_path)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
        process.wait()
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    raise ServeFailed(f"cosmos serve did not start (exit {process.returncode}); log:\n{tail}")


def _limit_files(count: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))
