"""Shared by every test: structlog back to its defaults after each test; the compiled-template cache in a
temporary directory (never the user's ``~/.cache/cosmos``)."""

from __future__ import annotations

import os

import pytest
import structlog


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True, scope="session")
def _template_cache_in_tmp(tmp_path_factory):
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before
