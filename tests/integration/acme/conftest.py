"""pebble + pebble-challtestsrv for the ACME tests (skipped locally when missing, failed in CI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import unavailable
from tests.support.pebble import Pebble, PebbleUnavailable


def _start(tmp_path_factory: pytest.TempPathFactory) -> Pebble:
    try:
        return Pebble(tmp_path_factory.mktemp("pebble")).start()
    except PebbleUnavailable as error:
        problem = str(error)
    unavailable(problem)


@pytest.fixture
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """A fresh pebble per test: its HTTP-01 port (``pebble.http_port``) is the HAProxy HTTP port to bind."""
    server = _start(tmp_path_factory)
    yield server
    server.stop()
