"""The ``acme`` certificate resolver: a :class:`CertificateManager` on a thread of its own.

The agent hands it the wanted host names after every pass (:meth:`observe`);
the thread syncs them at once, then again every ``check_interval`` seconds
(renewals) or when a backing-off name is due.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from cosmos_core.certs import Certificate
from cosmos_core.logs import get_logger
from cosmos_core.settings import Settings

from cosmos_acme.manager import CertificateManager

log = get_logger("cosmos.acme")
CHECK_INTERVAL = 3600.0
WATCH_INTERVAL = 1.0  # how often the HAProxy worker PID is compared (a reload starts a new worker)


class AcmeResolver:
    """See the module docstring; ``manager`` does the work, this class only schedules it."""

    def __init__(self, manager: CertificateManager, check_interval: float = CHECK_INTERVAL,
                 watch_interval: float = WATCH_INTERVAL) -> None:
        self.manager = manager
        self.check_interval = check_interval
        self.watch_interval = watch_interval
        self._worker: str | None = None
        self._reloaded_at: float | None = None
        self._callbacks: list[Callable[[list[Certificate]], None]] = []
        self._hosts: list[str] | None = None
        self._keep: list[str] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        manager.on_change = self._changed
        self._thread: threading.Thread | None = None  # started by the first observe()

    def certificates(self) -> list[Certificate]:
        return self.manager.certificates()

    def subscribe(self, callback: Callable[[list[Certificate]], None]) -> None:
        self._callbacks.append(callback)

    def observe(self, hosts: list[str], reloaded: bool = False, keep: list[str] | tuple[str, ...] = ()) -> None:
        """The wanted names after a pass; ``reloaded``: that pass reloaded HAProxy (wait for its new worker);
        ``keep``: certificate files served from elsewhere (``--certs-dir``), never withdrawn."""
        self._hosts = list(hosts)
        self._keep = list(keep)
        if reloaded:
            self._reloaded_at = time.time()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cosmos-acme", daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _changed(self, certificates: list[Certificate]) -> None:
        for callback in self._callbacks:
            try:
                callback(certificates)
            except Exception as exc:  # noqa: BLE001 - one subscriber must not stop the resolver
                log.error("certificate_subscriber_failed", error=f"{type(exc).__name__}: {exc}")

    def _run(self) -> None:
        last_sync = 0.0
        while not self._stop.is_set():
            due = self.manager.next_due()
            timeout = min(self.watch_interval, self.check_interval)
            if due is not None:
                timeout = max(0.0, min(timeout, due - time.monotonic() + 0.01))
            woken = self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._hosts is None:
                continue
            now = time.monotonic()
            # Sync on new names, when a backoff is due, hourly, and when HAProxy's worker changed:
            # a reload during an install may have left the new worker without a certificate.
            if woken or (due is not None and now >= due) or now - last_sync >= self.check_interval \
                    or self._worker_changed():
                if self._reloaded_at is not None:
                    self._await_new_worker(self._reloaded_at, self._worker)
                    self._reloaded_at = None
                    self._worker_changed()  # the worker the sync talks to
                try:
                    self.manager.sync(self._hosts, keep=self._keep, complete=True)
                except Exception as exc:  # noqa: BLE001 - the thread must survive a bad pass
                    log.error("acme_sync_failed", error=f"{type(exc).__name__}: {exc}")
                if self._worker_changed():  # a reload during the sync: its new worker may lack what was installed
                    self._wake.set()
                last_sync = now

    def _await_new_worker(self, since: float, before: str | None = None, timeout: float = 10.0) -> None:
        """After a reload, wait until the worker that answers the runtime API is the new one.

        Challenge answers and certificates sent to the old worker would be lost with it.
        A PID other than ``before`` (the worker known before the reload) counts as new; without
        ``before``, a worker started within a second of the reload, or a change of PID.
        """
        installer = self.manager.installer
        if installer is None:
            return
        deadline = time.monotonic() + timeout
        first: str | None = None
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                pid, started = installer.worker_info()
            except Exception:  # noqa: BLE001 - mid-reload: ask again
                pid, started = "", 0
            if pid and before is not None and pid != before:
                return
            if pid and before is None and (started >= int(since) - 1 or (first is not None and pid != first)):
                return
            first = first or pid or None
            time.sleep(0.05)

    def _worker_changed(self) -> bool:
        installer = self.manager.installer
        if installer is None:
            return False
        try:
            worker = installer.worker()
        except Exception:  # noqa: BLE001 - HAProxy restarting: try again next time
            return False
        changed, self._worker = worker != self._worker, worker
        return changed


def make_resolver(settings: Settings, store: Any = None) -> AcmeResolver:
    """Build the resolver from settings (flags / ``COSMOS_*`` / ``cosmos.toml``).

    ``acme_directory`` (required), ``acme_email``, ``acme_ca_bundle``,
    ``acme_storage`` (``store`` or ``dir:///path``), ``acme_renew_days``,
    ``haproxy_socket`` (runtime API on this host; with the ``docker-exec``
    reloader and no socket, the ``runtime_api`` socket inside the HAProxy
    container through ``docker exec``; without any, challenges cannot be answered).
    The thread starts with the first :meth:`AcmeResolver.observe`, so ``cosmos
    certs`` can list stored certificates without starting it.
    """
    from pathlib import Path

    from cosmos_core.errors import ValidationError
    from cosmos_core.tls import CHALLENGE_MAP

    from cosmos_core.haproxy.tls_runtime import connect

    from cosmos_acme.haproxy import Installer
    from cosmos_acme.issuer import Issuer
    from cosmos_acme.plugin import (
        ACME_CA_BUNDLE, ACME_DIRECTORY, ACME_EMAIL, ACME_RENEW_DAYS, ACME_STORAGE,
    )
    from cosmos_acme.storage import open_storage

    directory = settings.option(ACME_DIRECTORY)
    if not directory or not directory.startswith(("https://", "http://")):
        raise ValidationError("acme_directory", directory, "must be an https:// URL")
    storage_setting = settings.option(ACME_STORAGE)
    if store is None and storage_setting == "store":
        from cosmos_core.runtime import Runtime

        store = Runtime(settings).store
    storage = open_storage(storage_setting, settings.store, settings.table, store)
    issuer = Issuer(directory, settings.option(ACME_EMAIL), settings.option(ACME_CA_BUNDLE))
    # Without a runtime API nothing can answer a challenge: each name fails with one line saying so.
    # haproxy_socket (this host), else the docker-exec reloader's runtime_api inside the HAProxy container.
    api = connect(settings)
    config = settings.options.get("haproxy_config")
    map_file = Path(config).parent / CHALLENGE_MAP if settings.reloader == "host" and config else None
    installer = Installer(api, map_file=map_file) if api is not None else None
    manager = CertificateManager(issuer, storage, installer, renew_days=settings.option(ACME_RENEW_DAYS))
    return AcmeResolver(manager)
