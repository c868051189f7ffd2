"""Fixtures for the ``cosmos serve`` tests: real servers on free loopback ports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cosmos_core.server.testing import ServeProcess, start_serve

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "examples" / "seed-payload.json"

Serve = Callable[..., ServeProcess]


@pytest.fixture(scope="session")
def seed() -> dict[str, Any]:
    return json.loads(SEED.read_text())


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(*args, store=None, nofile=None, **env)``: a running ``cosmos serve``; stopped after the test.

    ``store`` defaults to a fresh SQLite file under ``tmp_path``; ``nofile``
    lowers its open-files limit; ``env`` entries are added to the environment
    (e.g. ``COSMOS_API_TOKEN``).
    """
    started: list[ServeProcess] = []

    def start(*args: str, store: str | None = None, nofile: int | None = None, **env: str) -> ServeProcess:
        index = len(started)
        store = store or f"sqlite://{tmp_path / f'state{index}.db'}"
        server = start_serve([*args, "--store", store], env={"XDG_STATE_HOME": str(tmp_path), **env},
                             log_path=tmp_path / f"serve{index}.log", nofile=nofile)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
