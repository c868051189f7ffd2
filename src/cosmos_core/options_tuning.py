"""Per-service tuning options (issue 15), each declared once with :mod:`cosmos_core.options`.

======================  =====================  =========  ==========================================
label                   payload field          level      value
======================  =====================  =========  ==========================================
``cosmos.balance``      ``balance``            service    roundrobin, leastconn, source, uri, first
``cosmos.weight``       ``weight``             container  0-256 (HAProxy server weight)
``cosmos.maxconn``      ``maxconn``            container  1-1000000 (per-server connection limit)
``cosmos.timeout-*``    ``timeoutConnect``...  service    a duration (see :func:`check_duration`)
``cosmos.auth-user``    ``authUser``           service    1-64 letters, digits, ``_ . -``
``cosmos.auth-hash``    ``authHash``           service    a crypt(3) hash (``$6$...``), never clear text
``cosmos.allow``        ``allow``              service    CIDR networks (comma/space separated label)
``cosmos.grace``        ``grace``              service    seconds 0-604800 (see :mod:`cosmos_core.grace`)
======================  =====================  =========  ==========================================

Every check returns a single safe config token (the template does no escaping)
or raises :class:`~cosmos_core.errors.ValidationError` naming the field (payload
path or label).  ``authUser`` and ``authHash`` come together or not at all.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from cosmos_core.errors import ValidationError
from cosmos_core.options import Value, container_option, options_rule, service_option

BALANCE = ("roundrobin", "leastconn", "source", "uri", "first")
MAX_TIMEOUT_MS = 2_147_483_647  # HAProxy keeps timeouts as signed 32-bit milliseconds
MAX_GRACE = 7 * 24 * 3600
MAX_NETWORKS = 64

_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"([0-9]{1,10})(us|ms|s|m|h|d)?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
# crypt(3) hashes HAProxy's libcrypt verifies: SHA-256 ($5$), SHA-512 ($6$), bcrypt ($2a/b/y$), yescrypt ($y$).
_HASH = re.compile(r"\$(?:5|6|2[aby]|y)\$[A-Za-z0-9./=$,]{8,240}")


def _whole(value: Any, field: str, low: int, high: int, what: str) -> int:
    """An int (or digit string) within ``low..high``."""
    if isinstance(value, str) and value.isascii() and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValidationError(field, value, f"must be {what}: a whole number {low}-{high}")
    if not low <= number <= high:
        raise ValidationError(field, value, f"must be {what}: a whole number {low}-{high}")
    return number


def check_balance(value: Any, field: str) -> str:
    """A load-balancing algorithm, case-insensitive."""
    if not isinstance(value, str) or value.strip().lower() not in BALANCE:
        raise ValidationError(field, value, f"must be one of {', '.join(BALANCE)}")
    return value.strip().lower()


def check_weight(value: Any, field: str) -> int:
    return _whole(value, field, 0, 256, "a server weight")


def check_maxconn(value: Any, field: str) -> int:
    return _whole(value, field, 1, 1_000_000, "a connection limit")


def check_duration(value: Any, field: str) -> str:
    """A timeout as HAProxy text with an explicit unit.

    Accepts HAProxy's time format (``500ms``, ``30s``, ``5m``, ``1h``, ``1d``,
    ``100us``) or a bare number of **seconds** (``30`` or the int ``30`` mean
    ``30s``, unlike HAProxy, where a bare number means milliseconds).  The result
    always carries its unit; 0 and anything over 24.8 days are refused.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    match = _DURATION.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(field, value, "must be a duration: seconds (30) or HAProxy time (500ms, 30s, 5m, 1h)")
    number, unit = int(match.group(1)), match.group(2) or "s"
    milliseconds = number * _UNITS_MS[unit]
    if not 1 <= milliseconds <= MAX_TIMEOUT_MS:
        raise ValidationError(field, value, "must be between 1ms and 24 days")
    return f"{number}{unit}"


def check_user(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _USER.fullmatch(value):
        raise ValidationError(field, value, "must be 1-64 letters, digits, '_', '.', '-' (not starting with '.' or '-')")
    return value


def check_hash(value: Any, field: str) -> str:
    """A crypt(3) password hash; a clear-text password is refused (and not echoed)."""
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        shown = value if isinstance(value, str) and value.startswith("$") else "(hidden: not a hash)"
        raise ValidationError(
            field, shown,
            "must be a crypt(3) hash: SHA-512 '$6$salt$hash' (openssl passwd -6), SHA-256 '$5$', bcrypt '$2b$' "
            "or yescrypt '$y$'; never a clear-text password",
        )
    return value


def check_networks(value: Any, field: str) -> tuple[str, ...]:
    """CIDR networks (a bare address is one host), from a list or a comma/space separated string."""
    items = re.split(r"[,\s]+", value.strip()) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or items == [""]:
        raise ValidationError(field, value, "must be a list of CIDR networks, e.g. 10.0.0.0/8,192.168.1.0/24")
    if len(items) > MAX_NETWORKS:
        raise ValidationError(field, value, f"must list at most {MAX_NETWORKS} networks")
    networks = []
    for item in items:
        try:
            if not isinstance(item, str):
                raise ValueError
            networks.append(str(ipaddress.ip_network(item.strip())))
        except ValueError:
            raise ValidationError(field, value, f"{item!r} is not a CIDR network (host bits must be zero: "
                                                "10.0.0.0/8, 2001:db8::/32)") from None
    return tuple(sorted(set(networks), key=networks.index))


def check_grace(value: Any, field: str) -> int:
    return _whole(value, field, 0, MAX_GRACE, "a grace period in seconds")


def check_timestamp(value: Any, field: str) -> float:
    """A Unix time in seconds (the internal ``empty_since``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValidationError(field, value, "must be a Unix time in seconds")
    return round(float(value), 3)


BALANCE_OPTION = service_option("balance", "balance", "balance", check_balance, "load-balancing algorithm")
WEIGHT_OPTION = container_option("weight", "weight", "weight", check_weight, "server weight 0-256")
MAXCONN_OPTION = container_option("maxconn", "maxconn", "maxconn", check_maxconn, "per-server maxconn")
TIMEOUT_OPTIONS = {
    name: service_option(f"timeout_{name}", f"timeout-{name}", f"timeout{name.title()}", check_duration,
                         f"timeout {name}")
    for name in ("connect", "server", "tunnel")
}
AUTH_USER_OPTION = service_option("auth_user", "auth-user", "authUser", check_user, "basic-auth user")
AUTH_HASH_OPTION = service_option("auth_hash", "auth-hash", "authHash", check_hash, "basic-auth crypt(3) hash")
ALLOW_OPTION = service_option("allow", "allow", "allow", check_networks, "client networks allowed")
GRACE_OPTION = service_option("grace", "grace", "grace", check_grace, "seconds of 503 after the last container")
#: Internal: when the service's last container went away (set by reconcile, no label or payload field).
EMPTY_SINCE_OPTION = service_option("empty_since", None, None, check_timestamp, "internal: Unix time")


@options_rule
def _auth_pair(values: Mapping[str, Value], field_of: Callable[[str], str]) -> None:
    """A user without a hash (or a hash without a user) would leave the service open: refuse it."""
    if ("auth_user" in values) != ("auth_hash" in values):
        given, missing = ("auth_user", "auth_hash") if "auth_user" in values else ("auth_hash", "auth_user")
        raise ValidationError(field_of(given), values[given] if given == "auth_user" else "(hash)",
                              f"needs {field_of(missing)} as well")
