"""One simulated fleet host for the lost-update test: random truths through the payload parser and the pipeline.

``python -m tests.integration.fleet.churn_worker HOST SECONDS OUT STORE`` reports a
random subset of its containers as a payload with ``"host": HOST`` again and
again for SECONDS, then writes the last payload that landed to OUT (JSON).
"""

from __future__ import annotations

import json
import random
import sys
import time

from cosmos_core import payload, pipeline
from cosmos_core.errors import StoreError
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings

SERVICES = 4
CONTAINERS = 6


def truth(host: str, index: int, rng: random.Random) -> dict:
    chosen = [k for k in range(CONTAINERS) if rng.random() < 0.5]
    running = [{"serviceName": f"s{k % SERVICES}", "id": f"{host}-{k}", "ip": f"10.9.{index}.{k + 1}", "port": 8080}
               for k in chosen]
    candidates = {}
    for item in running:
        candidates.setdefault(item["serviceName"], []).append({"id": item["id"], "ip": item["ip"], "port": 8080})
    return {
        "table": "fleet", "host": host, "running": running,
        "candidates": [{"serviceName": name, "configMode": "host", "predicate": f"{name}.test", "port": 8080,
                        "containers": containers} for name, containers in sorted(candidates.items())],
    }


SETTLE = 2.0


def settle(runtime: Runtime, last: dict) -> int:
    """What ``cosmos watch`` does through its generation poll: a moved generation means another
    host wrote, so apply this host's truth again (a no-op when it is intact).  Returns the passes."""
    store = runtime.store
    passes = 0
    while True:
        pipeline.generate(runtime, payload.parse(last))
        passes += 1
        generation = store.fleet("fleet").generation  # type: ignore[attr-defined]
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline and store.fleet("fleet").generation == generation:  # type: ignore[attr-defined]
            time.sleep(0.2)
        if store.fleet("fleet").generation == generation:  # type: ignore[attr-defined]
            return passes


def main() -> None:
    host, seconds, out, store = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    index = int(host.lstrip("h"))
    rng = random.Random(index)
    runtime = Runtime(Settings(store=store, table="fleet"))
    deadline, landed, passes, failures = time.monotonic() + seconds, None, 0, 0
    try:
        while landed is None or time.monotonic() < deadline:
            doc = truth(host, index, rng)
            try:
                pipeline.generate(runtime, payload.parse(doc))
            except StoreError:  # gave up after 10 conflicts: this truth did not land; the next one will
                failures += 1
                continue
            landed, passes = doc, passes + 1
        settles = settle(runtime, landed)
    finally:
        runtime.close()
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({"last": landed, "passes": passes, "failures": failures, "settles": settles}, handle)


if __name__ == "__main__":
    main()
