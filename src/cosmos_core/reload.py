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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping

from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ReloadOutcome

UNCHANGED = "config unchanged"
ALREADY_LIVE = "config unchanged (already live)"


class InstallingReloader(ABC):
    """Implements :meth:`apply` (the :class:`~cosmos_core.contracts.Reloader` protocol) once."""

    def __init__(self) -> None:
        self._applied: tuple[Hashable, Bundle] | None = None  # (target, bundle) known to be live
        self._pending = False  # installed, but the reload failed

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
