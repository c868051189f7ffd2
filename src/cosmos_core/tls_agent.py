"""Wiring HTTPS into ``cosmos watch``: certificates you bring, re-read; a certificate resolver (ACME).

* The emitter serves the certificates you bring (``certs_dir``) plus every
  certificate the resolver serves, from the first render on (a restart starts
  from the truth).  Whenever that set changes, the emitter's certificate set is
  replaced (the next bundle carries it) and the changed certificate files and
  crt-list are written beside the live config at once (``put_files`` of the
  ``host`` and ``docker-exec`` reloaders; files of certificates no longer
  served are removed), so a later reload or restart loads what HAProxy already
  serves.  When HAProxy already serves the change (runtime API), the reloader
  records the files as applied (``adopt``): the next pass reloads only if
  something else changed, so a certificate costs no reload at all.
* ``certs_dir`` is re-read when it changes: checked after every pass and every
  :data:`CERTS_DIR_POLL` seconds, by names, sizes and mtimes only (no file is
  read while nothing changed).  A new or replaced file goes into the running
  HAProxy through its runtime API (``new/set/commit ssl cert``, ``add ssl
  crt-list``), a removed one leaves it (``del ssl crt-list``, ``del ssl
  cert``): no reload.  Without a runtime API the next bundle carries the change.
  A bad file is skipped with one warning (again only when the file changes);
  every other certificate keeps serving, and a file that was good before keeps
  serving its last good version until it is good again or removed.
* After each pass the resolver learns the host names that services with
  HTTPS claim; a name a brought certificate covers is never issued, and a
  brought certificate's file is never withdrawn by the resolver.  Nor is a
  name whose certificate file a brought file already has (``web.test.pem``
  holding another host): one warning, and the host is not served until the
  file is renamed (two certificates never share ``certs/<name>.pem``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from cosmos_core.certs import (
    Certificate, CertificateError, dir_signature, for_host, merge, safe_name, scan_dir, write_files,
)
from cosmos_core.errors import CosmosError
from cosmos_core.logs import get_logger
from cosmos_core.tls import TLSConfig, policy

log = get_logger("cosmos.tls")

#: Seconds between two checks of ``certs_dir`` when no pass happens.
CERTS_DIR_POLL = 2.0


def wanted_hosts(services: Any, brought: list[Certificate]) -> list[str]:
    """Host names of host-routed services with HTTPS on or redirect that no brought certificate covers."""
    return sorted({
        s.predicate for s in services
        if s.mode == "host" and policy(dict(s.options)) != "off" and for_host(brought, s.predicate) is None
    })


def name_taken(hosts: list[str], brought: list[Certificate]) -> dict[str, Certificate]:
    """Of ``hosts``, those whose ACME certificate name (``safe_name(host)``) a brought file already has
    (a ``web.test.pem`` that does not cover web.test): host -> that certificate.  Issuing would make
    two certificates share ``certs/<name>.pem``, one replacing the other in HAProxy."""
    names = {c.name: c for c in brought}
    return {host: names[safe_name(host)] for host in hosts if safe_name(host) in names}


class HTTPSWiring:
    """The certificates an agent serves: ``brought`` (``certs_dir``) and ``acme`` (the resolver's)."""

    def __init__(self, runtime: Any, base: TLSConfig) -> None:
        self.emitter = runtime.emitter
        self.settings = runtime.settings
        self.resolver = runtime.certificate_resolver
        self.base = base
        self.brought: list[Certificate] = list(base.certificates)
        self.acme: list[Certificate] = []
        self.certs_dir: str | None = self.settings.options.get("certs_dir")
        self.signature = dir_signature(self.certs_dir) if self.certs_dir else None
        self.skipped: dict[str, tuple[str, Any]] = {}  # file -> (reason, its signature entry): warned once
        if self.certs_dir and self.signature is not None:
            self._note_skipped(scan_dir(self.certs_dir)[1], warn=False)  # tls_config warned at start
        self.reloader: Any = getattr(runtime, "reloader", None)
        self._files: dict[str, bytes] = {}  # the HTTPS files last published
        self._api: Any = None
        self._api_made = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._taken: dict[str, str] = {}  # host -> brought file whose name it would take: warned once

    # ------------------------------------------------------------------ serving

    def publish(self, live: bool = False) -> None:
        """Give the emitter the current certificate set, and put the changed HTTPS files beside the live config.

        ``live``: HAProxy already serves the change (through its runtime API);
        then the reloader also records the files as applied, so the next pass
        reloads only if something else changed.
        """
        with self._lock:
            self.emitter.tls = self.base.with_certificates(merge(self.acme, self.brought))
            files = self.emitter.files()
            changed: dict[str, bytes | None] = {p: d for p, d in files.items() if self._files.get(p) != d}
            changed |= {p: None for p in self._files.keys() - files.keys()}
            first, self._files = not self._files, files
            log.info("certificates_updated", count=len(self.emitter.tls.certificates))
            if not changed:
                return
            put = getattr(self.reloader, "put_files", None)
            config = self.settings.options.get("haproxy_config")
            host_dir = Path(config).parent if put is None and self.settings.reloader == "host" and config else None
            if (put is None or first) and host_dir is None:
                return  # nowhere to write (the first bundle installs them; the container may not run yet)
            # Adopt before writing: a pass that the write itself triggers (a Docker exec event) then finds
            # the bundle unchanged.  A failed write forgets what is live, so the next pass reloads.
            adopt = getattr(self.reloader, "adopt", None)
            adopted = bool(live and adopt is not None and adopt(changed))
            try:
                if put is not None:
                    put(changed)
                else:
                    write_files(host_dir, {p: d for p, d in changed.items() if d is not None})
                    for gone in (p for p, d in changed.items() if d is None):
                        (host_dir / gone).unlink(missing_ok=True)
            except (CosmosError, OSError) as exc:
                if adopted:
                    self.reloader.forget()
                log.warning("certificate_files_not_written", reason=str(exc), via="next reload")
                return
            if adopted:
                log.info("certificate_files_live", files=sorted(changed))

    def on_acme(self, certificates: list[Certificate]) -> None:
        """The resolver's served set changed."""
        with self._lock:
            self.acme = list(certificates)
            self.publish(live=True)  # issued / renewed / withdrawn through the runtime API

    def api(self) -> Any:
        """The runtime API of the HAProxy under control, or None (made once)."""
        if not self._api_made:
            from cosmos_core.haproxy.tls_runtime import connect

            self._api_made = True
            try:
                self._api = connect(self.settings)
            except CosmosError as exc:
                log.warning("runtime_api_unusable", reason=str(exc))
        return self._api

    # ------------------------------------------------------------------ certs_dir

    def refresh(self) -> bool:
        """Re-read ``certs_dir`` if its names, sizes or mtimes changed; True when it was re-read."""
        if not self.certs_dir:
            return False
        signature = dir_signature(self.certs_dir)
        if signature == self.signature:
            return False
        with self._lock:
            self.signature = signature
            try:
                found, skipped = scan_dir(self.certs_dir)
            except CertificateError as exc:
                log.warning("certs_dir_unreadable", directory=self.certs_dir, reason=exc.reason)
                return False  # keep serving what was loaded
            old = {c.name: c for c in self.brought}
            new = {c.name: c for c in found}
            # A file that went bad (a half-written copy, a corrupt edit) keeps serving its last good
            # version until it is good again or removed: a 2 s poll catching a copy midway is no outage.
            bad = {file for file, _ in skipped}
            kept = [c for c in self.brought if c.path in bad and c.name not in new]
            new |= {c.name: c for c in kept}
            self._note_skipped(skipped, warn=True, kept={c.path for c in kept})
            changes = [("added", new[n]) for n in sorted(new.keys() - old.keys())]
            changes += [("replaced", new[n]) for n in sorted(new.keys() & old.keys())
                        if new[n].fingerprint != old[n].fingerprint or new[n].pem != old[n].pem]
            acme_files = {c.file for c in self.acme}
            changes += [("removed", old[n]) for n in sorted(old.keys() - new.keys()) if old[n].file not in acme_files]
            self.brought = [new[n] for n in sorted(new)]
            served = self._install(changes)
            self.publish(live=served)
        return True

    def _note_skipped(self, skipped: list[tuple[str, str]], warn: bool, kept: set[str] | None = None) -> None:
        """Warn once per bad file and version; ``kept``: bad files whose last good version still serves."""
        entries = {entry[0]: entry for entry in self.signature or ()}
        now: dict[str, tuple[str, Any]] = {}
        for file, reason in skipped:
            state = (reason, entries.get(Path(file).name))
            if warn and self.skipped.get(file) != state:
                if file in (kept or ()):
                    log.warning("certificate_skipped", file=file, reason=reason, serving="last good version")
                else:
                    log.warning("certificate_skipped", file=file, reason=reason)
            now[file] = state
        self.skipped = now

    def _install(self, changes: list[tuple[str, Certificate]]) -> bool:
        """Each change into the running HAProxy through its runtime API (one log line each); True when
        every change is served now."""
        from cosmos_core.haproxy import tls_runtime

        api = self.api() if changes else None
        served = True
        for action, cert in changes:
            if api is None:
                log.info("certificate_" + action, file=cert.file, via="next reload")
                served = False
                continue
            try:
                if action == "removed":
                    tls_runtime.withdraw(api, cert.file)
                else:
                    tls_runtime.install(api, cert.file, cert.pem)
            except (CosmosError, ValueError) as exc:
                log.warning("certificate_runtime_failed", file=cert.file, action=action, reason=str(exc),
                            via="next reload")
                served = False
                continue
            log.info("certificate_" + action, file=cert.file, names=list(cert.names), via="runtime API")
        return served

    def poll(self, interval: float = CERTS_DIR_POLL) -> None:
        """Check ``certs_dir`` every ``interval`` seconds on a daemon thread (until :meth:`close`)."""
        if not self.certs_dir:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except Exception as exc:  # noqa: BLE001 - the poller must survive a bad pass
                    log.error("certs_dir_check_failed", error=f"{type(exc).__name__}: {exc}")

        threading.Thread(target=run, name="cosmos-certs-dir", daemon=True).start()

    def close(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ passes

    def observe(self, result: Any, outcome: Any) -> None:
        """After a pass: re-read ``certs_dir`` if it changed, then tell the resolver the wanted names."""
        self.refresh()
        if self.resolver is not None:
            hosts = wanted_hosts(result.services, self.brought)
            taken = name_taken(hosts, self.brought)
            for host, cert in taken.items():
                if self._taken.get(host) != cert.path:
                    log.warning("certificate_not_ordered", host=host, file=cert.path,
                                reason=f"the certs_dir file has the name {cert.file} an ACME certificate for the "
                                       "host would get, and does not cover the host; rename the file")
            self._taken = {host: cert.path for host, cert in taken.items()}
            self.resolver.observe([h for h in hosts if h not in taken], reloaded=outcome.reloaded,
                                  keep=[c.file for c in self.brought])


def attach(runtime: Any, agent: Any, poll: float | None = CERTS_DIR_POLL) -> "HTTPSWiring | None":
    """Write the HTTPS files and connect ``certs_dir`` re-reading and ``runtime.certificate_resolver`` (if
    any) to the emitter and ``agent``; None (falsy) when HTTPS is off (the emitter renders no TLS).

    ``poll``: seconds between checks of ``certs_dir`` besides the passes (None: on passes only).
    """
    base = getattr(runtime.emitter, "tls", None)
    if base is None:
        return None
    wiring = HTTPSWiring(runtime, base)
    wiring.reloader = getattr(agent, "reloader", None) or wiring.reloader
    resolver = wiring.resolver
    wiring.on_acme(resolver.certificates() if resolver is not None else [])
    if resolver is not None:
        resolver.subscribe(wiring.on_acme)
    if resolver is not None or wiring.certs_dir:
        agent.observers.append(wiring.observe)
    if poll is not None:
        wiring.poll(poll)
    return wiring
