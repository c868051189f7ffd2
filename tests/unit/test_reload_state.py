"""The reloaders' shared state machine: unchanged / refused / pending retry."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from cosmos_core.bundle import Bundle
from cosmos_core.errors import ReloadError
from cosmos_core.reload import ALREADY_LIVE, UNCHANGED, InstallingReloader


class Fake(InstallingReloader):
    """Files in a dict, a target id, scripted failures; records every step."""

    def __init__(self) -> None:
        super().__init__()
        self.files: Bundle | None = None
        self.incarnation = "c1"
        self.refuse = False
        self.reload_fails = 0
        self.steps: list[str] = []

    def target(self) -> Hashable:
        return self.incarnation

    def live(self, bundle: Bundle) -> Bundle | None:
        self.steps.append("live")
        return self.files

    def install(self, bundle: Bundle, previous: Bundle | None) -> None:
        self.steps.append("install")
        if self.refuse:
            raise ReloadError("refused", invalid=True)
        self.files = bundle

    def reload_haproxy(self) -> None:
        self.steps.append("reload")
        if self.reload_fails:
            self.reload_fails -= 1
            raise ReloadError("reload failed")


ONE, TWO = Bundle.of("one\n"), Bundle.of("two\n", {"maps/m.map": b"k v\n"})


def test_applied_then_unchanged_without_looking_again() -> None:
    fake = Fake()
    assert fake.apply(ONE, None).reloaded
    again = fake.apply(ONE, ONE)
    assert not again.reloaded and again.reason == UNCHANGED
    assert fake.steps == ["live", "install", "reload"]


def test_a_new_target_compares_with_its_live_files() -> None:
    fake = Fake()
    fake.files = ONE
    outcome = fake.apply(ONE, None)
    assert not outcome.reloaded and outcome.reason == ALREADY_LIVE
    fake.incarnation = "c2"  # restarted: memory no longer counts
    fake.files = None
    assert fake.apply(ONE, ONE).reloaded


def test_refused_keeps_nothing_and_is_not_retryable() -> None:
    fake = Fake()
    fake.apply(ONE, None)
    fake.refuse = True
    with pytest.raises(ReloadError) as info:
        fake.apply(TWO, ONE)
    assert not info.value.retryable and info.value.exit_code == 2
    assert fake.files == ONE and not fake.pending
    fake.refuse = False
    assert fake.apply(TWO, ONE).reloaded  # the refused bundle was not remembered as live


def test_a_failed_reload_is_pending_and_done_again_although_the_files_match() -> None:
    fake = Fake()
    fake.reload_fails = 1
    with pytest.raises(ReloadError) as info:
        fake.apply(TWO, None)
    assert info.value.retryable and fake.pending and fake.files == TWO
    fake.steps.clear()
    assert fake.apply(TWO, None).reloaded
    assert fake.steps == ["install", "reload"] and not fake.pending
    assert fake.apply(TWO, TWO).reason == UNCHANGED


def test_files_changed_at_run_time_are_adopted_so_the_bundle_carrying_them_is_unchanged() -> None:
    fake = Fake()
    assert not fake.adopt({"certs/a.pem": b"A"})  # nothing known to be live yet
    assert fake.apply(TWO, None).reloaded
    assert fake.adopt({"certs/a.pem": b"A", "maps/m.map": None})  # one added, one removed at run time
    carrying = Bundle.of("two\n", {"certs/a.pem": b"A"})
    outcome = fake.apply(carrying, TWO)
    assert not outcome.reloaded and outcome.reason == UNCHANGED
    assert not fake.adopt({"haproxy.cfg": b"other\n"})  # never the main file
    fake.forget()  # a failed write: the next apply compares with the live files, which lack it
    assert fake.apply(Bundle.of("two\n", {"certs/a.pem": b"B"}), carrying).reloaded
    fake.reload_fails = 1
    with pytest.raises(ReloadError):
        fake.apply(ONE, None)
    assert not fake.adopt({"certs/a.pem": b"A"})  # a reload is pending: nothing to adopt into
