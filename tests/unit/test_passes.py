"""Pass strategies: a strategy named by ``emitter`` does the whole pass; the built-in is local."""

from __future__ import annotations

import pytest

from cosmos_core.contracts import Provides
from cosmos_core.errors import CosmosError, PluginError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.model import Container, Service, Snapshot
from cosmos_core.passes import LocalPass, Pass, RemotePass
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings


class FakeRemote:
    """Records what the remote pass hands it."""

    def __init__(self, fail: bool = False, answer: object = None) -> None:
        self.calls: list[tuple[Snapshot, str]] = []
        self.fail = fail
        self.answer = answer

    def remote_config(self, snapshot: Snapshot, table: str) -> object:
        self.calls.append((snapshot, table))
        if self.fail:
            raise CosmosError("remote down")
        return self.answer if self.answer is not None else f"config for {table}\n"


class Plugin:
    def __init__(self, client: FakeRemote) -> None:
        self.client = client

    @hookimpl
    def cosmos_passes(self) -> list[Provides[RemotePass]]:
        return [Provides("fake-remote", lambda runtime: RemotePass(self.client, runtime.settings.table))]


def runtime_with(client: FakeRemote) -> Runtime:
    # A store URL whose scheme nobody provides: touching the store would raise.
    settings = Settings(store="nowhere://", emitter="fake-remote", table="agent-table")
    return Runtime(settings, Plugins.from_plugins(Plugin(client)))


SNAPSHOT = Snapshot(None, candidates=(Service("web", "host", "web.example.com", None, 80,
                                              (Container("c1", "10.0.0.1"),)),))


def test_the_remote_does_the_pass_and_the_local_store_is_never_touched() -> None:
    remote = FakeRemote()
    runtime = runtime_with(remote)
    assert isinstance(runtime.strategy, RemotePass) and isinstance(runtime.strategy, Pass)
    result = runtime.strategy.run(SNAPSHOT)
    assert result.config == "config for agent-table\n"
    assert result.bundle.files == {"haproxy.cfg": b"config for agent-table\n"}
    assert (result.table, result.services, bool(result.plan), result.attempts) == ("agent-table", (), False, 1)
    assert remote.calls == [(SNAPSHOT, "agent-table")]
    runtime.strategy.check()  # nothing to ping: the remote holds the state
    assert "store" not in runtime.__dict__


def test_the_snapshots_own_table_wins() -> None:
    remote = FakeRemote()
    runtime_with(remote).strategy.run(Snapshot("astro"))
    assert remote.calls[0][1] == "astro"


def test_a_remote_failure_propagates_as_a_cosmos_error() -> None:
    with pytest.raises(CosmosError, match="remote down"):
        runtime_with(FakeRemote(fail=True)).strategy.run(SNAPSHOT)


def test_a_remote_answer_of_the_wrong_type_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match=r"remote_config\(\) returned int"):
        runtime_with(FakeRemote(answer=42)).strategy.run(SNAPSHOT)


def test_the_builtin_strategy_is_local() -> None:
    runtime = Runtime(Settings(store="sqlite://:memory:"))
    assert isinstance(runtime.strategy, LocalPass)
    runtime.strategy.check()
    assert runtime.strategy.run(SNAPSHOT).services[0].name == "web"
