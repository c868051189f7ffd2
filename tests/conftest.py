"""Shared by every test: structlog back to its defaults after each test."""

from __future__ import annotations

import pytest
import structlog


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    structlog.reset_defaults()
