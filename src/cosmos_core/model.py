"""The data model: frozen dataclasses and the one place where strings are checked.

Every :class:`Service` and :class:`Container` validates itself on construction, so
any instance that exists holds only values that are safe to place in a config
file.  Field errors raise :class:`~cosmos_core.errors.ValidationError` naming the
attribute; callers prefix the path (``candidateServices[0].``) with
:meth:`ValidationError.within`.

Routing-mode specific checks of a predicate (hostname, path...) belong to the
routing mode plugin; here a predicate only has to be a plain token that cannot
break out of a config line.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cosmos_core.errors import ValidationError
from cosmos_core.options import CONTAINER_OPTIONS, SERVICE_OPTIONS, Options, freeze

DEFAULT_MODE = "host"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MODE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_COOKIE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# A predicate is one config token: printable ASCII without space, quotes,
# backslash, '#' (comment), '$' (env expansion) or braces.
_PREDICATE = re.compile(r"[A-Za-z0-9._~/:@%+=,;!*()\[\]-]{1,255}")
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
    return _token(value, field_name, _CONTAINER_ID, "must be 1-128 characters of letters, digits, '_', '.', '-'")


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
    return _token(value, field_name, _PREDICATE,
                  "must be 1-255 printable characters without spaces, quotes, '#', '$', '\\' or braces")


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


def check_host(value: Any, field_name: str = "ip") -> str:
    """An IPv4/IPv6 address or an RFC 1123 host name (no port)."""
    _require(isinstance(value, str) and value != "", field_name, value, "must be a non-empty string")
    try:
        return _check_host(value)
    except ValidationError as exc:
        raise ValidationError(field_name, value, exc.reason) from None


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
    _require(isinstance(value, str) and value != "", field_name, value, "must be a non-empty string")
    try:
        return _split_address(value)
    except ValidationError as exc:
        raise ValidationError(field_name, value, exc.reason) from None


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


@dataclass(frozen=True, slots=True, order=True)
class Container:
    """One instance of a service: a container id and the address HAProxy reaches it at.

    ``port`` may be ``None``: the service's port applies then.  ``options`` are
    per-server options (:data:`cosmos_core.options.CONTAINER_OPTIONS`).
    """

    id: str
    host: str
    port: int | None = None
    options: Options = ()

    def __post_init__(self) -> None:
        if type(self.id) is not str or not _CONTAINER_ID.fullmatch(self.id):
            check_container_id(self.id, "id")  # raises with the reason
        object.__setattr__(self, "host", check_host(self.host, "ip"))
        port = self.port
        if port is not None and not (type(port) is int and 0 < port < 65536):
            object.__setattr__(self, "port", check_port(port, "port"))
        if self.options:
            object.__setattr__(self, "options", check_options(self.options, CONTAINER_OPTIONS))


@dataclass(frozen=True, slots=True)
class Service:
    """A routed service: its routing settings and its containers (sorted by id, unique)."""

    name: str
    mode: str = DEFAULT_MODE
    predicate: str = ""
    cookie: str | None = None
    port: int | None = None
    containers: tuple[Container, ...] = ()
    options: Options = ()

    def __post_init__(self) -> None:
        self._validate(_SERVICE_FIELDS)

    def _validate(self, names: Iterable[str]) -> None:
        """Check (and normalise) the named fields, then the containers' ports."""
        for name in names:
            if name == "options":
                if self.options:
                    object.__setattr__(self, "options", check_options(self.options, SERVICE_OPTIONS))
            elif name != "containers":
                value = _SERVICE_CHECKS[name](getattr(self, name), _SERVICE_LABELS[name])
                object.__setattr__(self, name, value)
        unique = {c.id: c for c in self.containers}
        object.__setattr__(self, "containers", tuple(sorted(unique.values())))
        if self.port is None:
            for index, container in enumerate(self.containers):
                if container.port is None:
                    raise ValidationError(
                        f"containers[{index}].ip", container.host, "has no port and the service sets none"
                    )

    def derive(self, **changes: Any) -> "Service":
        """Like :func:`dataclasses.replace`, validating only the changed fields.

        Reconcile builds many services out of already valid ones; this keeps
        that cheap without ever skipping a check on a new value.
        """
        new = object.__new__(Service)
        for name in _SERVICE_FIELDS:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        new._validate(changes)
        return new

    @property
    def settings(self) -> tuple[str, str, str | None, int | None]:
        """The routing settings, without containers and options."""
        return (self.mode, self.predicate, self.cookie, self.port)

    def same_settings(self, other: "Service") -> bool:
        """Equal routing settings and options: what a candidate replaces."""
        return self.settings == other.settings and self.options == other.options

    def endpoint(self, container: Container) -> str:
        """``host:port`` (``[v6]:port``) for a container of this service."""
        port = container.port if container.port is not None else self.port
        host = f"[{container.host}]" if ":" in container.host else container.host
        return f"{host}:{port}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "predicate": self.predicate,
            "cookie": self.cookie,
            "port": self.port,
            "containers": [
                {"id": c.id, "address": self.endpoint(c), **({"options": dict(c.options)} if c.options else {})}
                for c in self.containers
            ],
            **({"options": dict(self.options)} if self.options else {}),
        }


def check_options(options: Any, registry: Mapping[str, Any], field_name: str = "options") -> Options:
    """``options`` as sorted ``(key, value)`` pairs, every key declared in ``registry`` and every value checked."""
    try:
        pairs = dict(options)
    except (TypeError, ValueError):
        raise ValidationError(field_name, options, "must be (key, value) pairs") from None
    checked = {}
    for key, value in pairs.items():
        spec = registry.get(key)
        if spec is None:
            raise ValidationError(f"{field_name}.{key}", value, "is not a known option")
        checked[key] = spec.check(value, f"{field_name}.{key}")
    return freeze(checked)


_SERVICE_FIELDS = ("name", "mode", "predicate", "cookie", "port", "containers", "options")
_SERVICE_CHECKS = {"name": check_name, "mode": check_mode, "predicate": check_predicate,
                   "cookie": check_cookie, "port": check_port}
_SERVICE_LABELS = {"name": "serviceName", "mode": "configMode", "predicate": "predicate",
                   "cookie": "cookie", "port": "port"}


@dataclass(frozen=True, slots=True)
class RunningContainer:
    """A container reported as running, with the service name it claims."""

    service: str
    container: Container


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one request (or one debounced batch of events) says about a host.

    ``table`` is the payload's ``tableName``/``table`` (``None`` when absent);
    ``candidates_key`` is how the source calls its candidates, for error paths.
    """

    table: str | None
    running: tuple[RunningContainer, ...] = ()
    candidates: tuple[Service, ...] = ()
    candidates_key: str = field(default="candidates", compare=False)


@dataclass(frozen=True, slots=True)
class State:
    """What a store holds for one table, plus a store-private token for optimistic locking."""

    services: Mapping[str, Service] = field(default_factory=dict)
    token: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Change:
    """One service's transition; ``before``/``after`` is ``None`` for create/delete."""

    name: str
    before: Service | None
    after: Service | None

    @property
    def settings_changed(self) -> bool:
        if self.before is None or self.after is None:
            return True
        return not self.before.same_settings(self.after)

    @property
    def added(self) -> tuple[Container, ...]:
        """Containers new or changed in ``after``."""
        old = set(self.before.containers) if self.before else set()
        return tuple(c for c in (self.after.containers if self.after else ()) if c not in old)

    @property
    def removed(self) -> tuple[Container, ...]:
        """Containers of ``before`` whose id is gone from ``after``."""
        keep = {c.id for c in self.after.containers} if self.after else set()
        return tuple(c for c in (self.before.containers if self.before else ()) if c.id not in keep)


@dataclass(frozen=True, slots=True)
class Plan:
    """The diff a store applies: one :class:`Change` per service that changes, sorted by name."""

    changes: tuple[Change, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changes)

    def summary(self) -> dict[str, int]:
        created = sum(1 for c in self.changes if c.before is None)
        deleted = sum(1 for c in self.changes if c.after is None)
        return {
            "created": created,
            "deleted": deleted,
            "updated": len(self.changes) - created - deleted,
            "containers_added": sum(len(c.added) for c in self.changes),
            "containers_removed": sum(len(c.removed) for c in self.changes),
        }
