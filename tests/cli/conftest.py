from __future__ import annotations

import pytest
from typer.testing import CliRunner


@pytest.fixture
def runner(monkeypatch, tmp_path, tmp_path_factory) -> CliRunner:
    """A runner in an empty working directory with no COSMOS_* settings leaking in."""
    import os

    for key in list(os.environ):
        if key.startswith("COSMOS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    # the compiled template's cache, outside the working directory (tests check that a failed
    # command leaves nothing there)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.chdir(tmp_path)
    return CliRunner()
