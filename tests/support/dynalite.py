"""A throw-away, in-memory dynalite (DynamoDB-protocol) server on a loopback port.

dynalite is pinned in ``tests/dynalite/package-lock.json`` and installed by
``scripts/install-test-deps.sh``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.support.net import free_port, stop_process, wait_port

DYNALITE_DIR = Path(__file__).resolve().parents[1] / "dynalite"
DYNALITE_BIN = DYNALITE_DIR / "node_modules" / ".bin" / "dynalite"
HOST = "127.0.0.1"
REGION = "us-east-1"
DUMMY_KEY = "x"


class DynaliteUnavailable(RuntimeError):
    """Node.js or the dynalite package is missing."""


@dataclass
class Dynalite:
    """A running dynalite process; use :meth:`stop` (or ``with``) to end it."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point boto3/botocore at this server."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint,
            "AWS_ACCESS_KEY_ID": DUMMY_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self) -> Any:
        """Return a boto3 DynamoDB client for this server (dummy credentials)."""
        return dynamodb_client(self.endpoint)

    def output(self) -> str:
        """Return what dynalite has written to stdout/stderr so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 5 s); idempotent."""
        stop_process(self.process, timeout=5)
        self.log.close()

    def __enter__(self) -> Dynalite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def dynamodb_client(endpoint: str, **kwargs: Any) -> Any:
    """Return a boto3 DynamoDB client for *endpoint* with dummy credentials."""
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_KEY,
        **kwargs,
    )


def _wait_for_port(server: Dynalite, port: int, timeout: float) -> bool:
    """Wait until *port* accepts connections; False if the process exited first."""
    if wait_port(port, server.process, timeout, HOST):
        return True
    if server.process.poll() is None:
        raise TimeoutError(f"dynalite not listening on {port}:\n{server.output()}")
    return False


def start_dynalite(
    table_state_ms: int = 0, timeout: float = 10.0, attempts: int = 3
) -> Dynalite:
    """Start dynalite in memory on a free loopback port and wait until it serves.

    *table_state_ms* is how long tables stay CREATING/UPDATING/DELETING
    (dynalite's default is 500 ms; 0 makes them ACTIVE at once, which keeps
    boto3 waiters, whose first poll comes immediately, from sleeping 20 s).
    A port lost to another process between choosing and binding is retried.
    Raises :class:`DynaliteUnavailable` when node or the package is missing.
    """
    if not DYNALITE_BIN.exists():
        raise DynaliteUnavailable(f"dynalite not installed at {DYNALITE_BIN}")
    if shutil.which("node") is None:
        raise DynaliteUnavailable(
            "node not found on PATH (dynalite 4 needs Node.js >= 20)"
        )
    state_ms, output = str(table_state_ms), ""
    for _ in range(attempts):
        port = free_port(HOST)
        command = [str(DYNALITE_BIN), "--port", str(port), "--host", HOST]
        for option in ("--createTableMs", "--updateTableMs", "--deleteTableMs"):
            command += [option, state_ms]
        log = tempfile.TemporaryFile(prefix="cosmos-dynalite-")  # noqa: SIM115 (closed by stop())
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        server = Dynalite(endpoint=f"http://{HOST}:{port}", process=process, log=log)
        try:
            if _wait_for_port(server, port, timeout):
                server.client().list_tables(Limit=1)
                return server
        except BaseException:
            server.stop()
            raise
        output = server.output()
        server.stop()
    raise RuntimeError(
        f"dynalite failed to start after {attempts} attempts; last output:\n{output}"
    )
