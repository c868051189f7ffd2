"""Throw-away options for tests: registered for the duration of a ``with`` block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cosmos_core import options as opts
from cosmos_core.errors import ValidationError


def _algo(value: Any, field: str) -> str:
    if value not in ("roundrobin", "leastconn", "first"):
        raise ValidationError(field, value, "must be roundrobin, leastconn or first")
    return str(value)


def _weight(value: Any, field: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(field, value, "must be a whole number") from None
    if isinstance(value, bool) or not 0 <= number <= 256:
        raise ValidationError(field, value, "must be 0-256")
    return number


def _nets(value: Any, field: str) -> tuple[str, ...]:
    import ipaddress

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValidationError(field, value, "must be a list of CIDR networks")
    try:
        return tuple(str(ipaddress.ip_network(str(item).strip())) for item in items)
    except ValueError:
        raise ValidationError(field, value, "must be a list of CIDR networks") from None


@contextmanager
def registered_test_options() -> Iterator[None]:
    """Service options ``test_algo`` / ``test_nets`` and container option ``test_weight``."""
    added = [
        ("service", opts.service_option("test_algo", "test-algo", "testAlgo", _algo)),
        ("service", opts.service_option("test_nets", "test-nets", "testNets", _nets)),
        ("container", opts.container_option("test_weight", "test-weight", "testWeight", _weight)),
    ]
    try:
        yield
    finally:
        for level, spec in added:
            (opts.SERVICE_OPTIONS if level == "service" else opts.CONTAINER_OPTIONS).pop(spec.key, None)
