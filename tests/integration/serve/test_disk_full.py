"""A full disk under the SQLite store: one line that says so and names the store; nothing half-written.

A small tmpfs is mounted for each test (root, as in CI) and unmounted at the end.
Both moments are covered: the disk fills during a write transaction, and the
disk is already full when the store is opened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import unavailable
from tests.integration.serve.conftest import SEED, Serve
from tests.integration.serve.helpers import post_json, request

CLI = "import sys; from cosmos_core.cli import main; sys.argv[0] = 'cosmos'; main()"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs mounted under ``tmp_path``; unmounted afterwards."""
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until at most ``leave`` bytes are free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(disk / "filler", "ab") as handle:
        try:
            handle.write(b"\0" * max(0, free - leave))
        except OSError:
            pass


def many_services(count: int, table: str = "astro") -> dict[str, Any]:
    return {"tableName": table, "runningServices": [], "candidateServices": [
        {"serviceName": f"svc{i}", "predicate": f"svc{i}.example.com",
         "containers": [{"id": f"c{i}", "ip": "10.0.0.1:80"}]} for i in range(count)]}


def generate(store: str, data: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"payload-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(data))
    return subprocess.run([sys.executable, "-c", CLI, "generate", str(path), "--store", store],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COSMOS_LOG_FORMAT": "json"})


def status(store: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", CLI, "status", "--json", "--store", store],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)["tables"]


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("cosmos: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_generate_when_the_disk_fills_during_the_write(small_disk: Path, tmp_path: Path) -> None:
    store = f"sqlite://{small_disk / 'state.db'}"
    assert generate(store, json.loads(SEED.read_text()), tmp_path).returncode == 0
    before = status(store)
    fill(small_disk, leave=96 * 1024)  # room to open the store, not for 3,000 services

    done = generate(store, many_services(3000), tmp_path)

    assert done.returncode == 1
    line = error_line(done.stderr)
    assert f"store {store}: the disk is full" in line
    assert "rollback" not in line
    (small_disk / "filler").unlink()
    assert status(store) == before  # the failed transaction left nothing behind


def test_generate_when_the_disk_is_full_at_open(small_disk: Path, tmp_path: Path) -> None:
    store = f"sqlite://{small_disk / 'state.db'}"
    assert generate(store, json.loads(SEED.read_text()), tmp_path).returncode == 0
    before = status(store)
    fill(small_disk, leave=0)

    for target in (store, f"sqlite://{small_disk / 'new.db'}"):
        done = generate(target, json.loads(SEED.read_text()), tmp_path)
        assert done.returncode == 1
        line = error_line(done.stderr)
        assert f"store {target}: the disk is full" in line
        assert "permissions" not in line

    (small_disk / "filler").unlink()
    assert status(store) == before


def test_serve_answers_503_naming_the_full_disk_and_recovers(serve: Serve, small_disk: Path,
                                                             seed: dict[str, Any]) -> None:
    server = serve(store=f"sqlite://{small_disk / 'state.db'}")
    assert post_json(server.url, seed).status == 200
    fill(small_disk, leave=96 * 1024)

    answer = post_json(server.url, many_services(3000))

    assert answer.status == 503
    assert "the disk is full" in answer.json()["error"]
    assert str(small_disk / "state.db") in answer.json()["error"]
    (small_disk / "filler").unlink()
    # The runtime's connection is still usable: no transaction was left open.
    retry = post_json(server.url, many_services(3000))
    assert retry.status == 200, retry.body[:300]
    tables = request(server.url, "GET", "/status").json()["tables"]
    assert len(tables["astro"]) == 3000  # app1 and app2 are gone: no running container names them
