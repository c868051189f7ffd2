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

The timing rule (:func:`flush_deadline`) is pure; :class:`Debouncer` applies it
to any blocking ``get(timeout)`` callable that raises :class:`queue.Empty` on
timeout (``lambda t: q.get(timeout=t)`` for a :class:`queue.Queue`), with an injectable clock.
"""

from __future__ import annotations

import math
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
BLOCKED = 0.001  # a get() that took longer than this found the queue empty


def flush_deadline(opened: float, last: float, quiet: float, max_wait: float) -> float:
    """When a batch opened at ``opened`` whose latest item came at ``last`` closes."""
    return min(last + quiet, opened + max_wait)


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
    _last_item: float | None = field(default=None, init=False)
    _recent: deque[tuple[float, T]] = field(default_factory=deque, init=False)

    def __post_init__(self) -> None:
        check_window(self.quiet, self.max_wait)
        if self.storm_items:
            check_window(self.storm_quiet, self.storm_max_wait, "debounce_storm_quiet", "debounce_storm_max_wait")

    def _seen(self, item: T, at: float) -> bool:
        """Record ``item``; ``True`` while a storm is on (enough distinct recent items)."""
        if not self.storm_items:
            return False
        self._recent.append((at, item))
        while self._recent and self._recent[0][0] < at - self.storm_window:
            self._recent.popleft()
        return len({recent for _, recent in self._recent}) >= self.storm_items

    def collect(self, get: Callable[[float | None], T], first_timeout: float | None = None) -> list[T]:
        """Block for a first item (up to ``first_timeout``), then gather the burst.

        Returns ``[]`` when no first item came within ``first_timeout``.
        """
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
