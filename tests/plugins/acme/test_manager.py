"""CertificateManager decisions without a network: renew threshold, leases, backoff, wildcard, install."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from cosmos_acme.issuer import AcmeError
from cosmos_acme.manager import CertificateManager, backoff_delay
from cosmos_acme.storage import DirStorage
from tests.support.tls import make_ca


class FakeIssuer:
    directory_url = "https://acme.test/dir"

    def __init__(self, days: float = 90) -> None:
        self.ca, self.days, self.orders, self.fail = make_ca(), days, [], None

    def account(self, stored):  # type: ignore[no-untyped-def]
        from cosmos_acme.issuer import Account

        return stored or Account(b"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n", "{}")

    def issue(self, names, publish, unpublish):  # type: ignore[no-untyped-def]
        self.orders.append(tuple(names))
        if self.fail:
            raise self.fail
        publish("tok", "tok.key")
        unpublish("tok")
        pem = self.ca.issue(list(names), days=self.days)
        cut = pem.index(b"-----BEGIN PRIVATE KEY")
        return pem[:cut], pem[cut:]


class FakeInstaller:
    def __init__(self) -> None:
        self.certs: dict[str, bytes] = {}
        self.published: list[str] = []

    def installed(self) -> set[str]:
        return set(self.certs)

    def install(self, file: str, pem: bytes) -> str:
        self.certs[file] = pem
        return "added"

    def withdraw(self, file: str) -> bool:
        return self.certs.pop(file, None) is not None

    def publish(self, token: str, value: str) -> None:
        self.published.append(token)

    def unpublish(self, token: str) -> None:
        self.published.remove(token)


@pytest.fixture
def parts(tmp_path):
    clock = [1000.0]
    issuer, installer, storage = FakeIssuer(), FakeInstaller(), DirStorage(tmp_path / "acme")
    manager = CertificateManager(issuer, storage, installer, clock=lambda: clock[0], owner="me")
    return manager, issuer, installer, storage, clock


def test_issue_once_then_serve_then_renew_below_the_threshold(parts) -> None:
    manager, issuer, installer, storage, _ = parts
    changes = []
    manager.on_change = changes.append
    assert manager.sync(["a.test"]) == {"a.test": "issued"}
    assert installer.certs.keys() == {"certs/a.test.pem"} and installer.published == []
    assert manager.sync(["a.test"]) == {"a.test": "valid"} and issuer.orders == [("a.test",)]
    assert len(changes) == 1 and [c.name for c in changes[0]] == ["a.test"]
    installer.certs.clear()  # HAProxy restarted from an old bundle / another agent's HAProxy
    assert manager.sync(["a.test"]) == {"a.test": "installed"} and len(issuer.orders) == 1
    manager.renew_days = 100  # 90 days left: renew now
    assert manager.sync(["a.test"]) == {"a.test": "renewed"} and len(issuer.orders) == 2


def test_a_lease_held_elsewhere_means_no_order(parts) -> None:
    manager, issuer, _, storage, _ = parts
    assert storage.acquire("a.test", "other-agent", 60)
    assert manager.sync(["a.test"]) == {"a.test": "leased"} and issuer.orders == []
    storage.release("a.test", "other-agent")
    assert manager.sync(["a.test"]) == {"a.test": "issued"}
    assert storage.acquire("a.test", "other-agent", 60)  # released after the order


def test_backoff_doubles_logs_once_per_cause_and_recovers(parts) -> None:
    manager, issuer, _, _, clock = parts
    issuer.fail = AcmeError("order: ACME server unreachable (ConnectionError)", kind="unreachable")
    with capture_logs() as logs:
        assert manager.sync(["a.test"]) == {"a.test": "failed"}
        assert manager.sync(["a.test"]) == {"a.test": "backoff"}
        clock[0] += backoff_delay(1)
        assert manager.sync(["a.test"]) == {"a.test": "failed"}
        assert manager.next_due() == clock[0] + backoff_delay(2)
        issuer.fail = AcmeError("order: rateLimited: too many", kind="rateLimited", retry_after=3600)
        clock[0] += backoff_delay(2)
        assert manager.sync(["a.test"]) == {"a.test": "failed"}
        assert manager.next_due() == clock[0] + 3600  # the server's wait, not the doubling
        issuer.fail = None
        clock[0] += 3600
        assert manager.sync(["a.test"]) == {"a.test": "issued"}
    assert [(e["event"], e.get("reason", "")[:30]) for e in logs if e["event"].startswith("acme_") and e["event"] != "acme_account_created"] == [
        ("acme_failed", "order: ACME server unreachable"),
        ("acme_failed", "order: rateLimited: too many"),
        ("acme_recovered", ""),
    ]


def test_wildcards_are_refused_with_one_line(parts) -> None:
    manager, issuer, _, _, _ = parts
    with capture_logs() as logs:
        for _ in range(3):
            assert manager.sync(["*.a.test"]) == {"*.a.test": "refused"}
    assert len(logs) == 1 and "wildcard" in logs[0]["reason"] and issuer.orders == []


def test_backoff_delay_caps() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3)] == [60, 120, 240]
    assert backoff_delay(30) == 6 * 3600


def test_a_name_no_service_claims_is_withdrawn_but_stays_stored_for_reuse(parts) -> None:
    manager, issuer, installer, storage, _ = parts
    changes = []
    manager.on_change = changes.append
    assert manager.sync(["a.test", "b.test"], complete=True) == {"a.test": "issued", "b.test": "issued"}
    with capture_logs() as logs:
        assert manager.sync(["a.test"], complete=True) == {"a.test": "valid"}
        assert manager.sync(["a.test"], complete=True) == {"a.test": "valid"}  # withdrawn once, logged once
    assert installer.certs.keys() == {"certs/a.test.pem"}
    assert [(e["event"], e["host"]) for e in logs] == [("certificate_withdrawn", "b.test")]
    assert [c.name for c in changes[-1]] == ["a.test"] and len(changes) == 2  # the next bundle drops it
    assert [c.name for c in manager.certificates()] == ["a.test"]
    assert storage.get("cert/b.test") is not None  # kept for reuse
    # Claimed again: served from the store at once, no new order.
    assert manager.sync(["a.test", "b.test"], complete=True) == {"a.test": "valid", "b.test": "installed"}
    assert len(issuer.orders) == 2 and [c.name for c in changes[-1]] == ["a.test", "b.test"]
    # A partial list (not complete) withdraws nothing.
    assert manager.sync(["a.test"]) == {"a.test": "valid"} and "certs/b.test.pem" in installer.certs
    # A file served from elsewhere (--certs-dir under the same name) is never withdrawn.
    assert manager.sync(["a.test"], keep=["certs/b.test.pem"], complete=True) == {"a.test": "valid"}
    assert "certs/b.test.pem" in installer.certs


def test_after_a_reload_the_resolver_waits_for_a_worker_other_than_the_one_before() -> None:
    """Two reloads within a second: the old worker's start time is as recent as the reload, so only
    its PID tells it apart (a certificate sent to it would be lost with it)."""
    import time as _time

    from cosmos_acme.resolver import AcmeResolver

    now = int(_time.time())
    answers = iter([("10", now), ("10", now), ("10", now), ("11", now)])

    class Installer:
        asked = 0

        def worker_info(self):  # type: ignore[no-untyped-def]
            Installer.asked += 1
            return next(answers)

    manager = SimpleNamespace(installer=Installer(), on_change=None)
    resolver = AcmeResolver(manager)  # type: ignore[arg-type]
    resolver._await_new_worker(_time.time(), before="10", timeout=30)
    assert Installer.asked == 4
