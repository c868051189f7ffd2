"""Which names need a certificate, issuing and renewing them, installing them without a reload.

:class:`CertificateManager.sync` takes the host names that services with
HTTPS claim and, for each:

* a wildcard name is refused (HTTP-01 cannot validate it) with one log line;
* a stored certificate with more than ``renew_days`` left is served: installed
  into HAProxy through the runtime API if HAProxy does not hold it yet (a
  second agent on the same storage serves it without issuing again);
* otherwise, unless the name is backing off, the agent takes the name's lease
  (a conditional write: one issuer per name across agents), issues through
  ACME HTTP-01, stores the certificate, installs it (``set ssl cert`` /
  ``commit ssl cert`` / ``add ssl crt-list``) and reports it through
  ``on_change`` so the next bundle carries it too.

A stored certificate whose name no service claims any more is withdrawn from
HAProxy (``del ssl crt-list`` / ``del ssl cert``, no reload) and from what
:meth:`CertificateManager.certificates` reports (so the next bundle drops it);
the stored copy stays, so a service that claims the name again is served at
once without a new order.

A failure backs the name off (60 s doubling to 6 h, and never sooner than
the ACME server's ``Retry-After``, e.g. on a ``rateLimited`` error) with one
log line per state change: the first failure, a different cause, the recovery.  Private keys are never logged.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from cosmos_core.certs import Certificate, CertificateError, parse_pem, safe_name
from cosmos_core.errors import CosmosError
from cosmos_core.logs import get_logger

from cosmos_acme.issuer import Account, AcmeError, Issuer
from cosmos_acme.storage import CertStorage

log = get_logger("cosmos.acme")

BACKOFF_START, BACKOFF_MAX = 60.0, 6 * 3600.0
WILDCARD_REASON = "HTTP-01 cannot validate a wildcard name; bring its certificate in --certs-dir"


def backoff_delay(failures: int, start: float = BACKOFF_START, cap: float = BACKOFF_MAX) -> float:
    """Seconds before retry number ``failures`` (1-based)."""
    return min(cap, start * 2 ** (failures - 1))


@dataclass
class NameState:
    state: str = "new"  # new | ok | failing | refused
    failures: int = 0
    next_try: float = 0.0
    reason: str = ""


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class CertificateManager:
    """Certificates for host names over ACME; see the module docstring.

    ``installer``: a :class:`cosmos_acme.haproxy.Installer` (None: store only);
    ``on_change(certs)``: called with every stored, valid certificate after one
    was issued or renewed; ``clock``: monotonic seconds for backoff.
    """

    def __init__(self, issuer: Issuer, storage: CertStorage, installer=None, *, renew_days: float = 30.0,
                 lease_ttl: float = 300.0, owner: str | None = None,
                 on_change: Callable[[list[Certificate]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.issuer = issuer
        self.storage = storage
        self.installer = installer
        self.renew_days = renew_days
        self.lease_ttl = lease_ttl
        self.owner = owner or default_owner()
        self.on_change = on_change
        self.clock = clock
        self.states: dict[str, NameState] = {}
        #: The names the last sync was given (None before the first: every stored certificate is served).
        self.wanted: set[str] | None = None
        self._reported: frozenset[tuple[str, str]] | None = None
        self._parsed: dict[str, tuple[bytes, Certificate]] = {}
        self._account: Account | None = None
        self._lock = threading.Lock()

    @property
    def source(self) -> str:
        return f"acme:{self.issuer.directory_url}"

    def _parse(self, key: str, data: bytes) -> Certificate | None:
        """A stored certificate, parsed once per distinct content (a sync of 1,000 names re-parses none)."""
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == data:
            return cached[1]
        try:
            cert = parse_pem(data, f"stored {key}", name=key[5:], origin=self.source)
        except CertificateError as exc:
            log.warning("acme_stored_certificate_unusable", key=key, reason=exc.reason)
            return None
        self._parsed[key] = (data, cert)
        return cert

    def _stored(self) -> dict[str, Certificate]:
        """``{name: certificate}`` for every usable stored certificate (one storage read)."""
        found = {}
        for key, data in self.storage.items("cert/").items():
            cert = self._parse(key, data)
            if cert is not None and cert.days_left() > 0:
                found[cert.name] = cert
        return found

    def certificates(self) -> list[Certificate]:
        """Every stored certificate that is still valid and, once :meth:`sync` ran, serves a wanted
        name, sorted by name."""
        return self._served(self._stored())

    def _served(self, stored: dict[str, Certificate]) -> list[Certificate]:
        wanted = None if self.wanted is None else {safe_name(host) for host in self.wanted}
        return [cert for name, cert in sorted(stored.items()) if wanted is None or name in wanted]

    def sync(self, hosts: Iterable[str], keep: Iterable[str] = (), complete: bool = False) -> dict[str, str]:
        """Bring every host to a served, fresh certificate; returns ``{host: outcome}``.

        Outcomes: ``valid`` (stored and served), ``installed`` (stored, now
        served), ``issued`` / ``renewed``, ``refused`` (wildcard), ``backoff``,
        ``leased`` (another agent is issuing it), ``failed``.  With
        ``complete`` (``hosts`` is every name wanted, as the agent's resolver
        passes it), a stored certificate of a name not in ``hosts`` leaves
        HAProxy and :meth:`certificates`, unless its file (``certs/<name>.pem``)
        is in ``keep`` (served from elsewhere, e.g. ``--certs-dir``).
        ``on_change`` is called when the served set changed.
        """
        hosts = sorted(set(hosts))
        with self._lock:
            if complete:
                self.wanted = set(hosts)
            stored = self._stored()
            try:
                installed = self.installer.installed() if self.installer else set()
            except CosmosError as exc:
                log.warning("acme_runtime_api_unreachable", reason=str(exc))
                installed = set()
            outcomes = {host: self._one(host, stored.get(safe_name(host)), installed) for host in hosts}
            if complete:
                self._withdraw(stored, installed, set(keep))
            served = self.certificates()
        report = frozenset((c.name, c.fingerprint) for c in served)
        if self.on_change and report != self._reported:
            self.on_change(served)
        self._reported = report
        return outcomes

    def _withdraw(self, stored: dict[str, Certificate], installed: set[str], keep: set[str]) -> None:
        """Take the stored certificates no wanted name uses out of HAProxy (the stored copy stays)."""
        if self.installer is None:
            return
        wanted = {safe_name(host) for host in self.wanted or ()}
        for name, cert in sorted(stored.items()):
            if name in wanted or cert.file not in installed or cert.file in keep:
                continue
            try:
                self.installer.withdraw(cert.file)
            except CosmosError as exc:
                log.warning("certificate_withdraw_failed", host=cert.names[0], file=cert.file, reason=str(exc))
                continue
            installed.discard(cert.file)
            log.info("certificate_withdrawn", host=cert.names[0], file=cert.file)

    def next_due(self) -> float | None:
        """Monotonic time of the earliest backoff retry, if any name is backing off."""
        due = [s.next_try for s in self.states.values() if s.state == "failing"]
        return min(due) if due else None

    def _one(self, host: str, current: Certificate | None, installed: set[str]) -> str:
        state = self.states.setdefault(host, NameState())
        if "*" in host:
            if state.state != "refused":
                log.warning("acme_wildcard_refused", host=host, reason=WILDCARD_REASON)
                state.state = "refused"
            return "refused"
        if current is not None and current.days_left() > self.renew_days:
            try:
                outcome = self._serve(current, installed)
            except CosmosError as exc:
                return self._failed(host, state, exc)
            self._ok(host, state)
            return outcome
        if state.state == "failing" and self.clock() < state.next_try:
            return "backoff"
        if not self.storage.acquire(host, self.owner, self.lease_ttl):
            return "leased"
        try:
            started = time.perf_counter()
            cert = self._issue(host)
            self._serve(cert, installed, force=True)
        except CosmosError as exc:
            return self._failed(host, state, exc)
        finally:
            self.storage.release(host, self.owner)
        outcome = "renewed" if current is not None else "issued"
        log.info("certificate_" + outcome, host=host, expires=f"{cert.not_after:%Y-%m-%dT%H:%M:%SZ}",
                 issuer=cert.issuer, ms=round((time.perf_counter() - started) * 1000, 1))
        self._ok(host, state)
        return outcome

    def _issue(self, host: str) -> Certificate:
        if self._account is None:
            stored = self.storage.get("account")
            account = self.issuer.account(Account.from_json(stored) if stored else None)
            if stored is None:
                self.storage.put("account", account.to_json())
                log.info("acme_account_created", directory=self.issuer.directory_url)
            self._account = account
        publish = self.installer.publish if self.installer else _no_publish
        unpublish = self.installer.unpublish if self.installer else (lambda token: None)
        chain, key = self.issuer.issue([host], publish, unpublish)
        try:
            cert = parse_pem(chain + key, f"issued for {host}", name=safe_name(host), origin=self.source)
        except CertificateError as exc:
            raise AcmeError(f"the issued certificate for {host} is unusable: {exc.reason}") from None
        self.storage.put(f"cert/{cert.name}", cert.pem)
        return cert

    def _serve(self, cert: Certificate, installed: set[str], force: bool = False) -> str:
        if self.installer is None:
            return "valid"
        if not force and cert.file in installed:
            return "valid"
        self.installer.install(cert.file, cert.pem)
        installed.add(cert.file)
        return "installed"

    def _failed(self, host: str, state: NameState, exc: CosmosError) -> str:
        cause = getattr(exc, "kind", type(exc).__name__)  # a new cause is a state change; a new token is not
        state.failures += 1
        asked = getattr(exc, "retry_after", None)  # the server's Retry-After: never retry sooner
        wait = max(asked, backoff_delay(state.failures)) if asked is not None else backoff_delay(state.failures)
        state.next_try = self.clock() + wait
        if state.state != "failing" or state.reason != cause:
            extra = {"retry_after_s": round(asked)} if asked is not None else {}
            log.warning("acme_failed", host=host, reason=str(exc), retry_in_s=round(wait), **extra)
        state.state, state.reason = "failing", cause
        return "failed"

    def _ok(self, host: str, state: NameState) -> None:
        if state.state == "failing":
            log.info("acme_recovered", host=host, after_failures=state.failures)
        state.state, state.failures, state.reason = "ok", 0, ""


def _no_publish(token: str, key_authorization: str) -> None:
    raise AcmeError("no HAProxy runtime API to answer the challenge (set haproxy_socket / COSMOS_HAPROXY_SOCKET)",
                    kind="no_runtime_api")
