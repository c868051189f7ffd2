"""Pass strategies: how a snapshot becomes a bundle.  The agent and the CLI hold a :class:`Pass`.

* :class:`LocalPass` (built in, name ``local``): reconcile with the local store,
  write the difference and render (:func:`cosmos_core.pipeline.generate`).
* :class:`RemotePass`: hand the snapshot to another Cosmos, which stores and
  renders; nothing is stored locally.  The ``emit_remote`` plugin provides it
  under the name ``remote`` through the ``cosmos_passes`` hook.

Choice: the ``emitter`` setting (``--emitter``, ``COSMOS_EMITTER``) names either
an emitter (a local pass with that emitter) or a pass strategy (``remote``).
That keeps ``--emitter remote`` / ``emitter = "remote"`` working.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ApplyResult, Provides
from cosmos_core.errors import PluginError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.logs import get_logger
from cosmos_core.model import Plan, Snapshot

if TYPE_CHECKING:
    from cosmos_core.pipeline import Result
    from cosmos_core.runtime import Runtime

log = get_logger("cosmos.passes")


@runtime_checkable
class Pass(Protocol):
    """One pass strategy: a snapshot in, a :class:`~cosmos_core.pipeline.Result` (with its bundle) out."""

    def run(self, snapshot: Snapshot) -> "Result":
        """Raise ValidationError for bad input, another CosmosError for a runtime failure."""

    def check(self) -> None:
        """Fail fast before the first pass (e.g. ping the store); raise a CosmosError."""


class RemoteClient(Protocol):
    """What :class:`RemotePass` asks: another Cosmos's config for a snapshot."""

    def remote_config(self, snapshot: Snapshot, table: str) -> str | Bundle:
        """The config (text or bundle) for ``snapshot`` in namespace ``table``; raise a CosmosError if it cannot."""


class LocalPass:
    """Reconcile, store and render here.

    ``skip_conflicts``: a candidate claiming another service's route is skipped
    with a warning (the agent sets it) instead of refusing the snapshot.
    ``verify``: called with each rendered bundle before anything is stored
    (``cosmos generate`` runs ``haproxy -c`` there); what it raises ends the pass.
    """

    skip_conflicts = False
    verify: "Callable[[Bundle], None] | None" = None

    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime

    def run(self, snapshot: Snapshot) -> "Result":
        from cosmos_core import pipeline

        return pipeline.generate(self.runtime, snapshot, skip_conflicts=self.skip_conflicts, verify=self.verify)

    def check(self) -> None:
        """Reach the store and build the emitter (a bad template fails here, before any event)."""
        self.runtime.store.ping()
        self.runtime.emitter  # noqa: B018 - built now, so the first pass is not slower


class RemotePass:
    """Ask a remote Cosmos: it validates, stores and renders.

    The result carries the remote's bundle only: ``services`` and ``plan`` are
    empty because the state lives on the remote.
    """

    def __init__(self, client: RemoteClient, default_table: str) -> None:
        self.client = client
        self.default_table = default_table

    def run(self, snapshot: Snapshot) -> "Result":
        from cosmos_core.pipeline import Result

        started = time.perf_counter()
        table = snapshot.table or self.default_table
        answer = self.client.remote_config(snapshot, table)
        if isinstance(answer, str):
            answer = Bundle.of(answer)
        if not isinstance(answer, Bundle):
            raise PluginError(f"remote client {type(self.client).__name__}: remote_config() returned "
                              f"{type(answer).__name__}, expected str or Bundle")
        log.info("remote_generated", table=table, ms=round((time.perf_counter() - started) * 1000, 1))
        return Result(table, answer, (), Plan(), ApplyResult(), 1)

    def check(self) -> None:
        return None  # the remote holds the state; an outage is retried pass by pass


def make_local(runtime: "Runtime") -> LocalPass:
    return LocalPass(runtime)


@hookimpl
def cosmos_passes() -> list[Provides]:
    return [Provides("local", make_local, "reconcile with the local store and render here")]
