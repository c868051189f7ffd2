"""The reloaders' shared state machine: unchanged / refused / pending retry.

A reloader that installs files and then reloads HAProxy subclasses
:class:`InstallingReloader` and implements three steps:

* :meth:`~InstallingReloader.target` - an identity of what it reloads (a
  container id and start time, a file's inode and mtime); when it changes,
  the live files are compared again instead of trusting memory;
* :meth:`~InstallingReloader.live` - the bundle installed now (``None`` if
  unknown or missing);
* :meth:`~InstallingReloader.install` - stage, validate as a set and install
  every file, or none: raise ``ReloadError(invalid=True)`` when HAProxy
  refuses the bundle, another :class:`ReloadError` when it cannot be done;
* :meth:`~InstallingReloader.reload_haproxy` - make HAProxy load the installed files.

:meth:`~InstallingReloader.apply` runs them in this order:

1. **unchanged**: the bundle equals the one last applied to the same target
   (or, for a new target, the live files): ``ReloadOutcome(False, reason)``;
2. **refused**: ``install`` raised ``ReloadError(invalid=True)``: nothing is
   remembered, the previous files stay, the error propagates (not retryable);
3. **pending retry**: installed but ``reload_haproxy`` failed: the error propagates and
   the next ``apply`` installs and reloads again, even if the files match.

:meth:`~InstallingReloader.adopt` records auxiliary files that changed in the
running HAProxy without a reload (certificates through the runtime API, https)
and were written beside the live config: the next bundle that carries them is
then *unchanged*, not a reason to reload.

Container churn without a reload (issue 11) is shared too:
:meth:`~InstallingReloader.apply_runtime` plans the ``set server`` commands
(:mod:`cosmos_core.haproxy.churn`) from the bundle last applied to the same
target and the live servers (remembered from its own last change, else asked
for with ``show servers state``), has the reloader install the config file and
send the commands (``send``: one ``docker exec``, or a file write and a socket),
and returns ``None`` whenever only a reload will do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ReloadOutcome
from cosmos_core.logs import get_logger

log = get_logger("cosmos.reload")

UNCHANGED = "config unchanged"
STARTED = object()  # the live servers are those the applied config starts (right after our reload)
ALREADY_LIVE = "config unchanged (already live)"


class InstallingReloader(ABC):
    """Implements :meth:`apply` (the :class:`~cosmos_core.contracts.Reloader` protocol) once."""

    def __init__(self) -> None:
        self._applied: tuple[Hashable, Bundle] | None = None  # (target, bundle) known to be live
        self._pending = False  # installed, but the reload failed
        self._live: tuple[Hashable, Any] | None = None  # (target, live servers) after our last runtime change

    @property
    def pending(self) -> bool:
        """True while an installed bundle still waits for a successful reload."""
        return self._pending

    def apply(self, bundle: Bundle, previous: Bundle | None) -> ReloadOutcome:
        """Install and reload ``bundle`` unless it is live already; see the module doc."""
        target = self.target()
        if not self._pending:
            if self._applied is not None and self._applied[0] == target:
                if self._applied[1] == bundle:
                    return ReloadOutcome(False, UNCHANGED)
            elif self.live(bundle) == bundle:
                self._applied = (target, bundle)
                return ReloadOutcome(False, ALREADY_LIVE)
        self._applied = None  # the live files may change: never skip on a stale record
        self.install(bundle, previous)
        self._pending = True
        self.reload_haproxy()
        self._pending = False
        self._applied = (self.target(), bundle)
        self._live = (self._applied[0], STARTED)  # a reload puts every server where the config file says
        return ReloadOutcome(True)

    def adopt(self, files: Mapping[str, bytes | None]) -> bool:
        """Remember auxiliary ``files`` (``None``: removed) as live: HAProxy already serves them and
        they are installed beside the config.  False (nothing remembered, the next bundle reloads)
        while no bundle is known to be live, a reload is pending, or ``files`` names the main file."""
        if self._pending or self._applied is None:
            return False
        target, bundle = self._applied
        if bundle.main in files:
            return False
        merged = dict(bundle.files)
        for path, data in files.items():
            if data is None:
                merged.pop(path, None)
            else:
                merged[path] = data
        self._applied = (target, Bundle(merged, bundle.main))
        return True

    def forget(self) -> None:
        """Trust no record of what is live: the next :meth:`apply` compares with the live files."""
        self._applied = None

    def apply_runtime(self, bundle: Bundle, api: Any, send: Callable[[str, str], str],
                      where: str = "") -> ReloadOutcome | None:
        """Apply a change of servers only through HAProxy's runtime API; ``None``: the full path must run.

        Only when the last applied bundle is known for this very target, no
        reload is pending, the auxiliary files are the same, and the configs
        differ in server lines of existing backends only.  ``api`` is a
        :class:`~cosmos_core.haproxy.runtime_api.RuntimeAPI` (its ``line`` and
        ``answers`` frame the batch); ``send(config, line)`` installs the new
        main file without a reload, sends ``line`` and returns HAProxy's answers
        (raise :class:`~cosmos_core.haproxy.runtime_api.RuntimeAPIError` when it
        cannot).  A refused command or an unreachable socket logs a warning and
        returns ``None`` (the full path that follows installs and reloads).
        """
        from cosmos_core import metrics
        from cosmos_core.haproxy import churn
        from cosmos_core.haproxy.runtime_api import RuntimeAPIError, refuse

        if self._pending or self._applied is None or self._applied[1] == bundle:
            return None
        target, old = self._applied
        if bundle.aux != old.aux or bundle.main != old.main or target != self.target():
            return None
        previous, config = old.config, bundle.config
        if churn.parse(previous).skeleton != churn.parse(config).skeleton:
            return None  # structural: no need to ask HAProxy
        known, self._live = self._live, None
        try:  # the live servers as our last reload or runtime change left them, else asked for
            if known and known[0] == target:
                live = churn.started(previous) if known[1] is STARTED else known[1]
            else:
                live = api.servers_state()
            plan = churn.plan(previous, config, live)
        except RuntimeAPIError as exc:
            log.warning("runtime_api_unavailable", where=where, error=str(exc))
            return None
        if plan.reload:
            log.info("runtime_needs_reload", reason=plan.reason)
            return None
        try:
            refuse(api.answers(plan.commands, send(config, api.line(plan.commands or ["show info"]))))
        except RuntimeAPIError as exc:
            log.warning("runtime_apply_failed", where=where, error=str(exc))
            return None  # the file may be installed; the full path that follows reloads it
        target = self.target()  # a file target changes with the write
        self._applied = (target, bundle)
        self._live = (target, churn.applied(live, plan.commands))
        metrics.runtime_api_updates(len(plan.commands))  # ops: cosmos_runtime_api_updates_total
        log.info("runtime_applied", where=where, **plan.summary())
        return ReloadOutcome(False, f"runtime API: {len(plan.commands)} commands, no reload")

    @abstractmethod
    def target(self) -> Hashable:
        """What is reloaded, as a value that changes when it is replaced or restarted."""

    @abstractmethod
    def live(self, bundle: Bundle) -> Bundle | None:
        """The installed files at ``bundle``'s paths, or ``None`` when unknown or missing."""

    @abstractmethod
    def install(self, bundle: Bundle, previous: Bundle | None) -> None:
        """Stage, validate as a set and install every file of ``bundle``, or none."""

    @abstractmethod
    def reload_haproxy(self) -> None:
        """Make HAProxy load the installed files; raise ReloadError if it could not."""
