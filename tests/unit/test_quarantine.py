"""Bisection finds the services HAProxy refuses, with few checks (pure)."""

from __future__ import annotations

import math

import pytest

from cosmos_core.quarantine import find_culprits


def checker(bad: set[str], pairs: tuple[frozenset[str], ...] = ()):
    calls = []

    def passes(subset: frozenset[str]) -> bool:
        calls.append(subset)
        return not (subset & bad) and not any(pair <= subset for pair in pairs)

    return passes, calls


@pytest.mark.parametrize("bad", [set(), {"s0"}, {"s511"}, {"s7", "s300"}, {"s1", "s2", "s3"}])
def test_finds_exactly_the_bad_services_with_about_k_log_n_checks(bad) -> None:
    names = [f"s{i}" for i in range(512)]
    passes, calls = checker(bad)
    found = find_culprits(names, passes)
    assert set(found) == bad
    assert passes(frozenset(set(names) - set(found)))
    assert len(calls) <= 2 + 2 * max(1, len(bad)) * (math.log2(len(names)) + 1)


def test_two_services_refused_only_together_lose_one_of_them() -> None:
    names = [f"s{i}" for i in range(64)]
    passes, _ = checker(set(), (frozenset({"s3", "s40"}),))
    found = find_culprits(names, passes)
    assert len(found) == 1 and found[0] in {"s3", "s40"}
    assert passes(frozenset(set(names) - set(found)))
