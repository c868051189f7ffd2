"""``cosmos serve`` as a command: start-up errors are one line with the right exit code."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from cosmos_core.server.testing import start_serve
from tests.integration.serve.helpers import request
from tests.integration.serve.test_http import cosmos


def test_an_unknown_store_scheme_is_exit_2_in_one_line() -> None:
    result = cosmos("serve", "--port", "0", "--store", "nosuch://x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "nosuch" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_setting_is_exit_2(tmp_path: Path) -> None:
    result = cosmos("serve", "--port", "70000", "--store", f"sqlite://{tmp_path / 'db'}")
    assert result.returncode == 2
    assert "--port" in result.stderr
    result = cosmos("serve", "--max-body", "0", "--store", f"sqlite://{tmp_path / 'db'}")
    assert result.returncode == 2
    assert "--max-body" in result.stderr


def test_a_port_in_use_is_exit_1_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cosmos("serve", "--port", str(port), "--store", f"sqlite://{tmp_path / 'db'}")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_stops_it_cleanly(tmp_path: Path) -> None:
    server = start_serve(["--store", f"sqlite://{tmp_path / 'db'}"], log_path=tmp_path / "serve.log")
    try:
        assert request(server.url, "GET", "/healthz").status == 200
        server.process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.process.wait(10) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    assert [e["event"] for e in server.log_events()][-1] == "stopped"
    assert "Traceback" not in server.log_path.read_text()
