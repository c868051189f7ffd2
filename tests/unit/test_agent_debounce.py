"""The debounce rule and the batch collector, driven by a fake clock."""

from __future__ import annotations

import queue
import threading

import pytest

from cosmos_core.debounce import Debouncer, flush_deadline
from cosmos_core.errors import ValidationError


class FakeFeed:
    """Items arriving at given times on a fake clock; ``get(timeout)`` advances it."""

    def __init__(self, arrivals: list[tuple[float, str]]) -> None:
        self.now = 0.0
        self.arrivals = sorted(arrivals)
        self.waits: list[float | None] = []

    def clock(self) -> float:
        return self.now

    def get(self, timeout: float | None) -> str:
        self.waits.append(timeout)
        if self.arrivals and (timeout is None or self.arrivals[0][0] <= self.now + timeout):
            at, item = self.arrivals.pop(0)
            self.now = max(self.now, at)
            return item
        self.now += timeout or 0.0
        raise queue.Empty


def test_deadline_is_quiet_after_last_event_capped_by_max_wait() -> None:
    assert flush_deadline(opened=10.0, last=10.0, quiet=0.1, max_wait=1.0) == pytest.approx(10.1)
    assert flush_deadline(opened=10.0, last=10.5, quiet=0.1, max_wait=1.0) == pytest.approx(10.6)
    assert flush_deadline(opened=10.0, last=10.95, quiet=0.1, max_wait=1.0) == pytest.approx(11.0)


def test_a_burst_becomes_one_batch_and_a_later_event_the_next() -> None:
    feed = FakeFeed([(0.0, "a"), (0.05, "b"), (0.12, "c"), (0.5, "d")])
    debouncer: Debouncer[str] = Debouncer(0.1, 1.0, clock=feed.clock)

    assert debouncer.collect(feed.get) == ["a", "b", "c"]
    assert feed.now == pytest.approx(0.22)
    assert debouncer.collect(feed.get) == ["d"]


def test_a_steady_trickle_is_cut_at_max_wait() -> None:
    feed = FakeFeed([(i * 0.05, f"e{i}") for i in range(100)])
    debouncer: Debouncer[str] = Debouncer(0.1, 1.0, clock=feed.clock)

    batch = debouncer.collect(feed.get)

    assert batch == [f"e{i}" for i in range(21)]  # 0.00 .. 1.00 s
    assert feed.now <= 1.0 + 1e-9


def test_a_final_item_closes_the_batch_at_once() -> None:
    feed = FakeFeed([(0.0, "a"), (0.01, "STOP"), (0.02, "b")])
    debouncer: Debouncer[str] = Debouncer(0.1, 1.0, final=lambda item: item == "STOP", clock=feed.clock)

    assert debouncer.collect(feed.get) == ["a", "STOP"]
    assert debouncer.collect(feed.get) == ["b"]


def test_no_first_item_within_the_timeout_gives_an_empty_batch() -> None:
    feed = FakeFeed([])
    debouncer: Debouncer[str] = Debouncer(0.1, 1.0, clock=feed.clock)

    assert debouncer.collect(feed.get, first_timeout=2.0) == []
    assert feed.waits == [2.0]


def test_works_on_a_real_queue() -> None:
    items: queue.Queue[int] = queue.Queue()
    for i in range(5):
        items.put(i)
    debouncer: Debouncer[int] = Debouncer(0.01, 0.5)

    assert debouncer.collect(lambda t: items.get(timeout=t)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("quiet", "max_wait", "field"), [(-1.0, 1.0, "debounce_quiet"), (0.5, 0.1, "debounce_max_wait")])
def test_bad_windows_are_refused_naming_the_setting(quiet: float, max_wait: float, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Debouncer(quiet, max_wait)
    assert info.value.field == field


def test_leading_edge_acts_at_once_after_an_idle_spell_and_coalesces_a_burst() -> None:
    feed = FakeFeed([(5.0, "run"), (5.02, "b1"), (5.05, "b2"), (5.08, "b3"), (9.0, "later")])
    debouncer: Debouncer[str] = Debouncer(0.1, 1.0, clock=feed.clock, leading=True)

    assert debouncer.collect(feed.get) == ["run"]  # waited since 0.0: idle, flushed on arrival
    assert feed.now == pytest.approx(5.0)
    feed.now = 5.1  # processing "run" took 100 ms; b1..b3 arrived meanwhile
    assert debouncer.collect(feed.get) == ["b1", "b2", "b3"]  # already queued: debounced
    assert feed.now == pytest.approx(5.2)
    assert debouncer.collect(feed.get) == ["later"]


def test_leading_edge_takes_what_is_already_queued_along() -> None:
    items: queue.Queue[str] = queue.Queue()
    debouncer: Debouncer[str] = Debouncer(0.1, 1.0, leading=True)

    def burst() -> None:
        for name in ("a", "b", "c"):
            items.put(name)

    timer = threading.Timer(0.05, burst)
    timer.start()
    batch = debouncer.collect(lambda t: items.get(timeout=t), first_timeout=2.0)
    timer.join()
    rest = [items.get_nowait() for _ in range(items.qsize())]

    assert batch[0] == "a" and batch + rest == ["a", "b", "c"]


def storm_debouncer(feed: FakeFeed) -> Debouncer[str]:
    return Debouncer(0.1, 1.0, clock=feed.clock, leading=True, storm_items=2, storm_window=0.5,
                     storm_quiet=1.0, storm_max_wait=5.0)


def batches(debouncer: Debouncer[str], feed: FakeFeed) -> list[list[str]]:
    found = []
    while feed.arrivals:
        batch = debouncer.collect(feed.get, first_timeout=30.0)
        if batch:
            found.append(batch)
    return found


def test_a_storm_spread_over_ten_seconds_costs_few_batches() -> None:
    # 50 containers starting in irregular clusters over ~10 s (gaps up to 0.5 s), as dockerd does.
    times = [0.05 + i * 0.2 + (0.1 if i % 7 == 0 else 0.0) for i in range(50)]
    feed = FakeFeed([(t, f"c{i}") for i, t in enumerate(times)])
    found = batches(storm_debouncer(feed), feed)
    assert found[0] == ["c0"]  # the first container is acted on at once (leading edge)
    assert len(found) <= 4
    assert sorted(sum(found, []), key=lambda x: int(x[1:])) == [f"c{i}" for i in range(50)]
    assert feed.now <= times[-1] + 1.0 + 1e-9  # the last batch closes one storm-quiet period after the last start


def test_lone_changes_stay_on_the_fast_path() -> None:
    # One container replaced at a time, about a second apart (removal then the next start).
    arrivals = []
    for i in range(5):
        arrivals += [(i * 1.2 + 0.05, f"new{i}"), (i * 1.2 + 0.65, f"new{i}")]
    feed = FakeFeed(arrivals)
    debouncer = storm_debouncer(feed)
    for i in range(5):
        assert debouncer.collect(feed.get, first_timeout=30.0) == [f"new{i}"]
        assert feed.now == pytest.approx(i * 1.2 + 0.05)  # leading edge: no waiting at all
        assert debouncer.collect(feed.get, first_timeout=30.0) == [f"new{i}"]


def test_storm_detection_is_off_by_default() -> None:
    feed = FakeFeed([(i * 0.2, f"c{i}") for i in range(10)])
    debouncer: Debouncer[str] = Debouncer(0.1, 1.0, clock=feed.clock, leading=True)
    assert len(batches(debouncer, feed)) == 10


def test_bad_storm_window_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        Debouncer(0.1, 1.0, storm_items=2, storm_quiet=2.0, storm_max_wait=1.0)
    assert info.value.field == "debounce_storm_max_wait"


@pytest.mark.parametrize("quiet, max_wait", [(float("nan"), 1.0), (0.1, float("nan")), (0.1, float("inf"))])
def test_non_finite_windows_are_refused(quiet: float, max_wait: float) -> None:
    with pytest.raises(ValidationError):
        Debouncer(quiet, max_wait)
