"""pipeline.generate with an emitter that has the optional RemoteEmitter capability."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cosmos_core import pipeline
from cosmos_core.contracts import Provides, RemoteEmitter, Route
from cosmos_core.errors import CosmosError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.model import Container, Service, Snapshot
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings


class FakeRemote:
    """Records what the pipeline hands it; never renders."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[Snapshot, str]] = []
        self.fail = fail

    def render(self, services: Sequence[Service], routes: Sequence[Route]) -> str:
        raise AssertionError("a remote emitter must not be asked to render")

    def remote_config(self, snapshot: Snapshot, table: str) -> str:
        self.calls.append((snapshot, table))
        if self.fail:
            raise CosmosError("remote down")
        return f"config for {table}\n"


class Plugin:
    def __init__(self, emitter: FakeRemote) -> None:
        self.emitter = emitter

    @hookimpl
    def cosmos_emitters(self) -> list[Provides[FakeRemote]]:
        return [Provides("fake-remote", lambda settings: self.emitter)]


def runtime_with(emitter: FakeRemote) -> Runtime:
    # A store URL whose scheme nobody provides: touching the store would raise.
    settings = Settings(store="nowhere://", emitter="fake-remote", table="agent-table")
    return Runtime(settings, Plugins.from_plugins(Plugin(emitter)))


SNAPSHOT = Snapshot(None, candidates=(Service("web", "host", "web.example.com", None, 80,
                                              (Container("c1", "10.0.0.1"),)),))


def test_the_remote_does_the_pass_and_the_local_store_is_never_touched() -> None:
    remote = FakeRemote()
    runtime = runtime_with(remote)
    result = pipeline.generate(runtime, SNAPSHOT)
    assert isinstance(remote, RemoteEmitter)
    assert result.config == "config for agent-table\n"
    assert (result.table, result.services, bool(result.plan), result.attempts) == ("agent-table", (), False, 1)
    assert remote.calls == [(SNAPSHOT, "agent-table")]
    assert pipeline.config_for(runtime, SNAPSHOT) == "config for agent-table\n"
    assert "store" not in runtime.__dict__


def test_the_snapshots_own_table_wins() -> None:
    remote = FakeRemote()
    pipeline.generate(runtime_with(remote), Snapshot("astro"))
    assert remote.calls[0][1] == "astro"


def test_a_remote_failure_propagates_as_a_cosmos_error() -> None:
    with pytest.raises(CosmosError, match="remote down"):
        pipeline.generate(runtime_with(FakeRemote(fail=True)), SNAPSHOT)


def test_the_builtin_emitter_is_not_remote() -> None:
    runtime = Runtime(Settings(store="sqlite://:memory:"))
    assert not isinstance(runtime.emitter, RemoteEmitter)
