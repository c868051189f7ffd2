"""One exponential backoff for every retry loop in Cosmos.

:class:`Backoff` answers "how many seconds before retry ``attempt``?" (1-based):
``min(cap, start * factor ** (attempt - 1))``, then jittered:

* ``jitter="none"``: exactly that delay (predictable waits: agent pass retries,
  Docker reconnects);
* ``jitter="equal"``: uniformly in ``[d/2, d]`` (clients of a shared server);
* ``jitter="full"``: uniformly in ``[0, d]`` (racing writers of one store).

Users: the agent's pass retry (1 s doubling to 30 s), the Docker source's
reconnect (0.2 s to 5 s), the remote client (``backoff`` to 5 s, equal jitter),
the pipeline's store-conflict retry and the DynamoDB store's unprocessed items.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Jitter = Literal["none", "equal", "full"]


@dataclass(frozen=True)
class Backoff:
    """Exponential delays in seconds; ``delay(attempt)`` for attempt 1, 2, 3...

    Raises :class:`ValueError` on construction if ``start`` or ``cap`` is
    negative, ``factor`` below 1 or ``jitter`` unknown.
    """

    start: float
    cap: float
    factor: float = 2.0
    jitter: Jitter = "none"

    def __post_init__(self) -> None:
        if self.start < 0 or self.cap < 0 or self.factor < 1 or self.jitter not in ("none", "equal", "full"):
            raise ValueError(f"invalid backoff {self!r}")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay of ``attempt`` (1-based; 0 or less gives ``start``)."""
        exponent = max(0, attempt - 1)
        try:
            return min(self.cap, self.start * self.factor**exponent)
        except OverflowError:
            return self.cap

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt``, jittered as configured."""
        ceiling = self.ceiling(attempt)
        if self.jitter == "equal":
            return random.uniform(ceiling / 2, ceiling)
        if self.jitter == "full":
            return random.uniform(0, ceiling)
        return ceiling
