"""Coalesce bursts of events: a quiet period plus a maximum wait.

A batch opens with its first item and closes when no new item has arrived for
``quiet`` seconds, or ``max_wait`` seconds after it opened, whichever comes
first.  So a steady trickle of events cannot postpone a reconcile forever, and
a burst of fifty container starts costs one reconcile instead of fifty.

With ``leading`` set, an item that arrives after an idle spell of at least
``quiet`` seconds (the collector was waiting for it, and the previous item is
that old) is a batch of its own, plus whatever is already queued: a lone
``docker run`` is acted on at once.  Items that were already queued when the
collector asked (a burst going on while the last batch was processed) are
coalesced as usual, so a storm still costs few batches.

A storm (``storm_items`` distinct items within ``storm_window`` seconds: many
containers changing at once, as when a deploy starts fifty of them) switches
to the longer ``storm_quiet`` / ``storm_max_wait`` window and turns the leading
edge off, so a storm that the engine spreads over ten seconds still costs a
handful of reloads, while a lone change stays fast.

**The interval rule** (``min_interval`` set; what ``cosmos watch`` uses since
issue 11): a leading edge plus a minimum interval between two batches, with no
quiet period.  An item that arrives at least ``min_interval`` seconds after the
previous batch was handed out is a batch at once (with whatever is already
queued); one that arrives sooner waits only until ``min_interval`` after that
batch, and everything that arrived meanwhile goes with it.  A lone change and a
few changes per second are therefore acted on within ``min_interval``, and
sustained churn cannot starve a new item: the deadline is fixed when the batch
opens and later items never push it back.  A storm (``storm_items`` *new* keys
within ``storm_window`` seconds, a key being new when it was not seen in the
``storm_memory`` seconds before; ``key`` maps an item to what is counted, e.g.
a container event to its service, so services that churn on and on are not a
storm while fifty services starting together are) still closes on ``storm_quiet`` /
``storm_max_wait``, so fifty services starting together cost a few batches.  A
busy engine may pause for longer than ``storm_quiet`` in the middle of a storm:
a new key that opens a batch within ``2 * storm_quiet`` of the moment the last
batch's storm condition held, with ``2 * storm_items`` new keys in the last
:data:`STORM_RATE_WINDOW` seconds (a storm's rate, not a few per second), keeps
the storm on.

A storm may be announced before it arrives: :meth:`Debouncer.created` (thread-safe,
called by an event source when a container is created, keyed like ``key``) marks a
key on its way until :meth:`Debouncer.settled` (started or removed) or
``storm_memory`` seconds.  A batch that opens while ``storm_items`` or more *new*
keys are announced and not settled is a storm from its first item (no leading
edge; ``docker compose up`` creates every container before starting any).  Any
storm batch stays open while announced new keys remain, waiting up to
:data:`STORM_PAUSE` seconds for each next item (a busy engine's pause does not split
it), and closes ``storm_quiet`` after the last of them arrived (at most
``storm_max_wait`` after it opened).  One or a few announced keys (a lone ``docker
run``, a deploy script) change nothing.

The timing rules (:func:`flush_deadline`, :func:`interval_deadline`) are pure; :class:`Debouncer` applies it
to any blocking ``get(timeout)`` callable that raises :class:`queue.Empty` on
timeout (``lambda t: q.get(timeout=t)`` for a :class:`queue.Queue`), with an injectable clock.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
BLOCKED = 0.001  # a get() that took longer than this found the queue empty
#: Seconds over which the interval rule measures a storm's rate when a storm batch has just closed.
STORM_RATE_WINDOW = 2.0
#: Seconds a storm batch waits for the next item while announced new keys have not arrived yet.
STORM_PAUSE = 2.0


def flush_deadline(opened: float, last: float, quiet: float, max_wait: float) -> float:
    """When a batch opened at ``opened`` whose latest item came at ``last`` closes."""
    return min(last + quiet, opened + max_wait)


def interval_deadline(now: float, previous: float | None, min_interval: float) -> float:
    """When a batch whose first item came at ``now`` closes under the interval rule.

    ``previous`` is when the previous batch was handed out (``None``: never).
    At once when that is at least ``min_interval`` ago, else ``min_interval`` after it.
    """
    if previous is None:
        return now
    return max(now, previous + min_interval)


def check_window(quiet: float, max_wait: float,
                 quiet_name: str = "debounce_quiet", max_wait_name: str = "debounce_max_wait") -> None:
    """Refuse negative periods and a maximum wait shorter than the quiet period."""
    from cosmos_core.errors import ValidationError

    if not (math.isfinite(quiet) and math.isfinite(max_wait)):
        raise ValidationError(quiet_name, (quiet, max_wait), "must be finite numbers")
    if quiet < 0:
        raise ValidationError(quiet_name, quiet, "must be >= 0")
    if max_wait < quiet:
        raise ValidationError(max_wait_name, max_wait, f"must be >= {quiet_name}")


@dataclass
class Debouncer(Generic[T]):
    """Collects one batch at a time from a blocking ``get(timeout)``.

    ``final(item)`` marks an item that closes the batch at once (a shutdown or
    connection-lost marker, say); it is returned as the batch's last item.
    """

    quiet: float
    max_wait: float
    final: Callable[[T], bool] = field(default=lambda item: False)
    clock: Callable[[], float] = time.monotonic
    leading: bool = False
    storm_items: int = 0
    storm_window: float = 0.5
    storm_quiet: float = 1.0
    storm_max_wait: float = 5.0
    min_interval: float | None = None
    key: Callable[[T], object] = field(default=lambda item: item)
    _flushed: float | None = field(default=None, init=False)
    storm_memory: float = 10.0
    _storm_seen: float | None = field(default=None, init=False)  # the last item of a storm batch
    _storm_ended: float | None = field(default=None, init=False)  # the last batch's storm condition last held
    _new_times: deque[float] = field(default_factory=deque, init=False)  # new keys of the last STORM_RATE_WINDOW
    _keys: dict[object, float] = field(default_factory=dict, init=False)
    _last_item: float | None = field(default=None, init=False)
    _recent: deque[tuple[float, T]] = field(default_factory=deque, init=False)
    _pending: dict[object, tuple[object, float]] = field(default_factory=dict, init=False)  # token -> (key, since)
    _pending_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        check_window(self.quiet, self.max_wait)
        if self.min_interval is not None and not (math.isfinite(self.min_interval) and self.min_interval >= 0):
            from cosmos_core.errors import ValidationError

            raise ValidationError("debounce_interval", self.min_interval, "must be a finite number >= 0")
        if self.storm_items:
            check_window(self.storm_quiet, self.storm_max_wait, "debounce_storm_quiet", "debounce_storm_max_wait")

    def created(self, token: object, key: object) -> None:
        """Announce an item on its way: ``token`` (a container id, say) was created under ``key``
        (its service) and will arrive once started.  Thread-safe; forgotten by :meth:`settled`
        or after ``storm_memory`` seconds."""
        now = self.clock()
        with self._pending_lock:
            if len(self._pending) > 4096:
                self._pending = {t: p for t, p in self._pending.items() if now - p[1] <= self.storm_memory}
            self._pending[token] = (key, now)

    def settled(self, token: object) -> None:
        """``token`` is no longer on its way (it started, or was removed); thread-safe, unknown tokens ignored."""
        with self._pending_lock:
            self._pending.pop(token, None)

    def _awaited(self, now: float) -> int:
        """How many distinct *new* keys (not seen in the last ``storm_memory`` s) are announced and not settled."""
        with self._pending_lock:
            for token in [t for t, (_, since) in self._pending.items() if now - since > self.storm_memory]:
                del self._pending[token]
            keys = {key for key, _ in self._pending.values()}
        return sum(1 for key in keys if key not in self._keys or now - self._keys[key] > self.storm_memory)

    def _seen(self, item: T, at: float) -> bool:
        """Record ``item``; ``True`` while a storm is on (enough distinct recent items)."""
        if not self.storm_items:
            return False
        self._recent.append((at, item))
        while self._recent and self._recent[0][0] < at - self.storm_window:
            self._recent.popleft()
        return len({recent for _, recent in self._recent}) >= self.storm_items

    def _seen_new(self, item: T, at: float) -> tuple[bool, bool]:
        """Interval rule: record ``item``'s key; (storm on, key new).

        A key is new when it was not seen in the ``storm_memory`` seconds before;
        the storm is on while ``storm_items`` new keys arrived within ``storm_window``.
        """
        if not self.storm_items:
            return False, False
        key = self.key(item)
        previous = self._keys.get(key)
        self._keys[key] = at
        new = previous is None or at - previous > self.storm_memory
        if new:
            self._recent.append((at, key))
            self._new_times.append(at)
        while self._new_times and self._new_times[0] < at - STORM_RATE_WINDOW:
            self._new_times.popleft()
        while self._recent and self._recent[0][0] < at - self.storm_window:
            self._recent.popleft()
        if len(self._keys) > 4096:  # forget keys not seen for a long time
            self._keys = {k: t for k, t in self._keys.items() if at - t <= self.storm_memory}
        return len({recent for _, recent in self._recent}) >= self.storm_items, new

    def collect(self, get: Callable[[float | None], T], first_timeout: float | None = None) -> list[T]:
        """Block for a first item (up to ``first_timeout``), then gather the burst.

        Returns ``[]`` when no first item came within ``first_timeout``.
        """
        if self.min_interval is not None:
            return self._collect_interval(get, first_timeout)
        asked = self.clock()
        try:
            first = get(first_timeout)
        except queue.Empty:
            return []
        batch = [first]
        opened = last = self.clock()
        storm = self._seen(first, opened)
        waited = opened - asked > BLOCKED
        idle = self._last_item is None or opened - self._last_item >= self.quiet
        if self.leading and waited and idle and not storm:
            batch += self._drain(get)
            self._last_item = self.clock()
            return batch
        while not self.final(batch[-1]):
            quiet, max_wait = (self.storm_quiet, self.storm_max_wait) if storm else (self.quiet, self.max_wait)
            remaining = flush_deadline(opened, last, quiet, max_wait) - self.clock()
            if remaining <= 0:
                break
            try:
                batch.append(get(remaining))
            except queue.Empty:
                break
            last = self.clock()
            storm = self._seen(batch[-1], last) or storm
        self._last_item = last
        return batch

    def _storm_after(self, item: T, stormy: float | None) -> float | None:
        """When the storm condition last held, counting ``item`` (hysteresis: once a storm is on,
        any new key keeps it on; a storm starts only with ``storm_items`` new keys in the window)."""
        now = self.clock()
        storm, new = self._seen_new(item, now)
        return now if storm or (new and stormy is not None) else stormy

    def _collect_interval(self, get: Callable[[float | None], T], first_timeout: float | None) -> list[T]:
        """The interval rule: leading edge + ``min_interval``; during a storm, until it calms down.

        A storm batch stays open until ``storm_quiet`` seconds after the storm
        condition last held, at most ``storm_max_wait`` after it opened; a batch
        cut by that maximum leaves the next one in storm mode.
        """
        assert self.min_interval is not None
        try:
            first = get(first_timeout)
        except queue.Empty:
            return []
        batch = [first]
        opened = self.clock()
        storm, new = self._seen_new(first, opened)
        stormy: float | None = opened if storm else None  # when the storm condition last held
        if self.storm_items and self._awaited(opened) >= self.storm_items:
            stormy = opened  # new services created and not started yet: a storm on its way, no leading edge
        elif self._storm_seen is not None and opened - self._storm_seen < self.storm_quiet:
            stormy = opened  # the previous storm batch was cut at its maximum wait: the storm goes on
        elif (new and self._storm_ended is not None and opened - self._storm_ended < 2 * self.storm_quiet
              and len(self._new_times) >= 2 * self.storm_items):
            stormy = opened  # a busy engine paused mid-storm: new services still come at a storm's rate
        earliest = deadline = interval_deadline(opened, self._flushed, self.min_interval)
        last = opened  # the latest item
        while not self.final(batch[-1]):
            if stormy is not None:
                hold = stormy + self.storm_quiet
                if self._awaited(self.clock()):
                    hold = max(hold, last + STORM_PAUSE)  # announced new keys still to come: the storm goes on
                deadline = max(earliest, min(hold, opened + self.storm_max_wait))
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            try:
                batch.append(get(remaining))
            except queue.Empty:
                continue  # the deadline passed (a storm found since may have moved it)
            last = self.clock()
            stormy = self._storm_after(batch[-1], stormy)
        if not self.final(batch[-1]):
            for item in self._drain(get):  # already queued: it goes along, never waits another round
                batch.append(item)
                stormy = self._storm_after(item, stormy)
        self._flushed = self._last_item = self.clock()
        cut = stormy is not None and self.clock() - stormy < self.storm_quiet  # ended by the maximum wait
        self._storm_seen = stormy if cut else None
        self._storm_ended = stormy
        return batch

    def _drain(self, get: Callable[[float | None], T]) -> list[T]:
        """What is already waiting, without blocking (up to a final item)."""
        drained: list[T] = []
        while True:
            try:
                drained.append(get(0))
            except queue.Empty:
                return drained
            if self.final(drained[-1]):
                return drained
