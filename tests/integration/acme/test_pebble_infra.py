"""The pebble fixture itself: API over its own TLS, root from the management endpoint."""

from __future__ import annotations

import json


def test_pebble_serves_a_directory_and_its_root(pebble) -> None:
    directory = json.loads(pebble.get(pebble.directory))
    assert {"newAccount", "newNonce", "newOrder"} <= set(directory)
    assert pebble.root_pem().startswith(b"-----BEGIN CERTIFICATE-----")
    assert pebble.http_port not in (pebble.api_port, pebble.mgmt_port)
