"""String validation: the one place where outside text is checked.

Every ``check_*`` function takes a raw value and the field path to name in the
error, and returns the normalised value or raises
:class:`~cosmos_core.errors.ValidationError` (``field: reason (got value)``).
The model's dataclasses call these on construction; payload parsers, label
parsers and settings call them at the boundary.

Routing-mode specific checks of a predicate (host name, path...) belong to the
routing mode plugin; here a predicate only has to be a plain token that cannot
break out of a config line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from cosmos_core.errors import ValidationError

_T = TypeVar("_T")

DEFAULT_MODE = "host"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
CONTAINER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MODE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_COOKIE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# A predicate is one token that keeps its meaning inside an HAProxy expression:
# letters, digits and . _ ~ / : @ % + = ; ! * -, never starting with '-' (a flag
# such as -i or -m).  Refused: space and control characters, quotes, '\', '#'
# (comment), '$' (env expansion), braces and parentheses (converter
# arguments: "),map("), brackets, < > | & ? ^ ` and non-ASCII.  ',' is allowed:
# the host mode lists hosts with it (issue 10); a mode that places a predicate
# inside converter arguments must refuse it in its own normalize.
_PREDICATE = re.compile(r"[A-Za-z0-9._~/:@%+=;!*,-]{1,255}")
PREDICATE_RULE = ("must be 1-255 characters of letters, digits and . _ ~ / : @ % + = ; ! * , - "
                  "(no spaces, quotes, '#', '$', '\\', braces, parentheses, brackets, < > | & ? ^ `)")
CONFIG_LINE_MAX = 1024
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def _require(ok: bool, field_name: str, value: Any, reason: str) -> None:
    if not ok:
        raise ValidationError(field_name, value, reason)


def _token(value: Any, field_name: str, pattern: re.Pattern[str], reason: str) -> str:
    """``value`` if it is a string that ``pattern`` matches in full."""
    _require(isinstance(value, str), field_name, value, "must be a string")
    _require(bool(pattern.fullmatch(value)), field_name, value, reason)
    return value


def check_name(value: Any, field_name: str = "serviceName") -> str:
    """A service name: also used as HAProxy backend and ACL name."""
    return _token(value, field_name, _NAME,
                  "must be 1-63 characters of letters, digits, '_', '.', '-', starting with a letter or digit")


def check_container_id(value: Any, field_name: str = "id") -> str:
    return _token(value, field_name, CONTAINER_ID_RE, "must be 1-128 characters of letters, digits, '_', '.', '-'")


def check_host_id(value: Any, field_name: str = "host") -> str:
    """A fleet host id (the reporting host, not an address): 1-128 characters of letters, digits, ``_.-``.

    ``""`` and ``None`` are refused: a caller with no host leaves the field out rather than
    passing an empty one, because "no host" means "the whole truth for the table".
    """
    return _token(value, field_name, _HOST_ID, "must be 1-128 characters of letters, digits, '_', '.', '-'")


def check_mode(value: Any, field_name: str = "configMode") -> str:
    """A routing mode name, case-insensitive; empty or missing means the default."""
    if value is None or value == "":
        return DEFAULT_MODE
    _require(isinstance(value, str), field_name, value, "must be a string")
    return _token(value.lower(), field_name, _MODE, "is not a valid mode name")


def check_cookie(value: Any, field_name: str = "cookie") -> str | None:
    """A sticky-cookie name, or ``None`` (missing, null or empty) for no stickiness."""
    if value is None or value == "":
        return None
    return _token(value, field_name, _COOKIE, "must be 1-64 characters of letters, digits, '_', '.', '-'")


def check_predicate(value: Any, field_name: str = "predicate") -> str:
    """A raw predicate, as a payload or label gives it; see :data:`PREDICATE_RULE` for what is refused.

    The mode's ``normalize`` then checks what the predicate means (a host
    name, a path...) and :func:`check_routed_predicate` what it returns.
    """
    return _token(value, field_name, _PREDICATE, PREDICATE_RULE)


def check_routed_predicate(value: Any, field_name: str = "predicate") -> str:
    """A predicate as a mode's ``normalize`` returned it: :func:`check_predicate`, and also
    neither a leading ``-`` nor ``=-`` (a flag such as ``-i``, alone or after a ``NAME=VALUE`` split).

    The raw ``-a`` a path mode turns into ``/-a`` passes; a mode that keeps ``-i``
    or ``X-Tenant=-i`` is refused.
    """
    check_predicate(value, field_name)
    _require(not value.startswith("-"), field_name, value, "must not start with '-' (a flag such as -i)")
    _require("=-" not in value, field_name, value, "must not have '-' right after '=' (a flag such as -i)")
    return value


def check_config_line(value: Any, field_name: str = "line") -> str:
    """Text a plugin contributes to one config line (an ACL criterion, a map entry...).

    Refused, with :class:`ValidationError`: anything but a ``str``; empty or
    blank text; more than 1024 characters; a line break or any other control or
    non-printable character; leading or trailing whitespace; a leading ``-``;
    ``#`` (starts a comment) and ``\\`` (an escape).  What the text means is
    the plugin's business: a mode still validates its own predicates.
    """
    _require(isinstance(value, str), field_name, value, "must be a string")
    _require(value.strip() != "", field_name, value, "must not be empty")
    _require(len(value) <= CONFIG_LINE_MAX, field_name, value, f"must be at most {CONFIG_LINE_MAX} characters")
    _require(value.isprintable(), field_name, value, "must be one line of printable characters")
    _require(value == value.strip(), field_name, value, "must not start or end with whitespace")
    _require(not value.startswith("-"), field_name, value, "must not start with '-'")
    _require("#" not in value and "\\" not in value, field_name, value, "must not contain '#' or '\\'")
    return value


def check_port(value: Any, field_name: str = "port") -> int | None:
    """A TCP port 1-65535 given as int or digit string; ``None``/empty means unset."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value_int = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        value_int = value
    else:
        raise ValidationError(field_name, value, "must be a port number")
    _require(1 <= value_int <= 65535, field_name, value, "must be between 1 and 65535")
    return value_int


def _cached_check(check: Callable[[str], _T], value: Any, field_name: str) -> _T:
    """``check(value)`` for a non-empty string ``value``; its error re-raised naming ``field_name``.

    ``check`` is cached on the value alone, so it cannot name the field itself.
    """
    _require(isinstance(value, str) and value != "", field_name, value, "must be a non-empty string")
    try:
        return check(value)
    except ValidationError as exc:
        raise ValidationError(field_name, value, exc.reason) from None


def check_host(value: Any, field_name: str = "ip") -> str:
    """An IPv4/IPv6 address or an RFC 1123 host name (no port)."""
    return _cached_check(_check_host, value, field_name)


@lru_cache(maxsize=65536)  # keyed by the value alone, so the cache hits whatever the field path
def _check_host(value: str, field_name: str = "") -> str:
    if _IPV4.fullmatch(value):
        return value
    try:
        if "%" not in value:  # no IPv6 zone ids: ipaddress accepts any text after '%'
            return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    _require(
        bool(_HOSTNAME.fullmatch(value)) and not _DIGITS_AND_DOTS.fullmatch(value),
        field_name,
        value,
        "must be an IP address or an RFC 1123 host name",
    )
    return value.lower()


def split_address(value: Any, field_name: str = "ip") -> tuple[str, int | None]:
    """Split ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` into (host, port)."""
    return _cached_check(_split_address, value, field_name)


@lru_cache(maxsize=65536)  # keyed by the value alone, so the cache hits whatever the field path
def _split_address(value: str, field_name: str = "") -> tuple[str, int | None]:
    host, port = value, None
    if value.startswith("["):
        end = value.find("]")
        _require(end > 0, field_name, value, "has an unclosed '['")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            _require(rest.startswith(":"), field_name, value, "must be [address]:port")
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    checked_host = check_host(host, field_name)
    checked_port = check_port(port, field_name) if port is not None else None
    _require(port is None or checked_port is not None, field_name, value, "has an empty port")
    return checked_host, checked_port
