"""payload.dump: a snapshot back into a payload that parses to the same snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cosmos_core import payload
from cosmos_core.model import Container, RunningContainer, Service, Snapshot

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-payload.json"


def test_the_seed_round_trips() -> None:
    snapshot = payload.loads(SEED.read_bytes())
    assert payload.loads(payload.dumps(snapshot)) == snapshot
    assert payload.parse(payload.dump(snapshot)) == snapshot


@pytest.mark.parametrize(
    "snapshot",
    [
        Snapshot(table=None),
        Snapshot(table="t", running=(RunningContainer("a", Container("c1", "10.0.0.1")),)),
        Snapshot(
            table="v6",
            running=(RunningContainer("a", Container("c1", "fd00::1", 8080)),),
            candidates=(Service("a", "path", "/api", None, 8080, (Container("c1", "fd00::1"),
                                                                   Container("c2", "backend.local", 9000))),),
        ),
        Snapshot(table="t", candidates=(Service("b", "host", "b.example.com", "SRV", 80,
                                                (Container("x", "10.0.0.2", 80),)),)),
    ],
)
def test_snapshots_round_trip(snapshot: Snapshot) -> None:
    assert payload.loads(payload.dumps(snapshot)) == snapshot


def test_dump_is_the_later_dialect_and_leaves_out_unset_values() -> None:
    snapshot = Snapshot(table=None, running=(RunningContainer("a", Container("c1", "10.0.0.1")),),
                        candidates=(Service("a", "host", "a.example.com", None, 80, ()),))
    data = json.loads(payload.dumps(snapshot))
    assert data == {
        "running": [{"serviceName": "a", "id": "c1", "ip": "10.0.0.1"}],
        "candidates": [{"serviceName": "a", "configMode": "host", "predicate": "a.example.com", "port": 80,
                        "containers": []}],
    }
