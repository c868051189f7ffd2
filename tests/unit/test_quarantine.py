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


def test_run_bounded_kills_a_hanging_command_with_what_it_started(tmp_path) -> None:
    import os

    from cosmos_core.errors import ReloadError
    from cosmos_core.quarantine import run_bounded

    pid_file = tmp_path / "child.pid"
    script = tmp_path / "hang"
    script.write_text(f"#!/bin/sh\nsleep 600 &\necho $! > {pid_file}\nwait\n")
    script.chmod(0o755)
    with pytest.raises(ReloadError) as info:
        run_bounded([str(script)], 0.5, "haproxy -c")
    assert str(info.value) == f"haproxy -c: {str(script)!r} did not finish within 0.5 s (killed)"
    child = int(pid_file.read_text())
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"
    assert run_bounded(["sh", "-c", "echo out; echo err >&2; exit 3"], 5, "x") == (3, "out\nerr\n")
    with pytest.raises(ReloadError, match="cannot run"):
        run_bounded([str(tmp_path / "missing")], 5, "x")
