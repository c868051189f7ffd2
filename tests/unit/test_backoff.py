"""The one backoff every retry loop uses."""

from __future__ import annotations

import pytest

from cosmos_core.backoff import Backoff


def test_exponential_and_capped() -> None:
    plain = Backoff(0.2, 5.0)
    assert [plain.delay(n) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert plain.delay(10_000) == 5.0  # no overflow


def test_jitter_stays_within_its_band() -> None:
    equal, full = Backoff(1.0, 8.0, jitter="equal"), Backoff(1.0, 8.0, jitter="full")
    assert all(2.0 <= equal.delay(3) <= 4.0 for _ in range(200))
    assert all(0.0 <= full.delay(3) <= 4.0 for _ in range(200))
    assert len({full.delay(3) for _ in range(20)}) > 1


@pytest.mark.parametrize("kwargs", [{"start": -1, "cap": 1}, {"start": 1, "cap": -1}, {"start": 1, "cap": 1, "factor": 0.5},
                                    {"start": 1, "cap": 1, "jitter": "some"}])
def test_bad_parameters_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
