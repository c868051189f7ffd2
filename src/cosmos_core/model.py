"""The data model: frozen dataclasses for services, containers, snapshots and plans.

Every :class:`Service` and :class:`Container` validates itself on construction
(with the checks in :mod:`cosmos_core.validate`), so any instance that exists
holds only values that are safe to place in a config file.  Field errors raise
:class:`~cosmos_core.errors.ValidationError` naming the attribute; callers
prefix the path (``candidateServices[0].``) with :meth:`ValidationError.within`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cosmos_core.errors import ValidationError
from cosmos_core.options import CONTAINER_OPTIONS, SERVICE_OPTIONS, Options, freeze
from cosmos_core.validate import (
    CONTAINER_ID_RE,
    DEFAULT_MODE,
    check_container_id,
    check_cookie,
    check_host,
    check_host_id,
    check_mode,
    check_name,
    check_port,
    check_predicate,
)

__all__ = ["DEFAULT_MODE", "Change", "Container", "Plan", "RunningContainer", "Service", "Snapshot", "State"]


@dataclass(frozen=True, slots=True, order=True)
class Container:
    """One instance of a service: a container id and the address HAProxy reaches it at.

    ``port`` may be ``None``: the service's port applies then.  ``options`` are
    per-server options (:data:`cosmos_core.options.CONTAINER_OPTIONS`).  ``host_id``
    is the fleet host that reported the container (``None``: single-host mode);
    ``host`` stays the address.
    """

    id: str
    host: str
    port: int | None = None
    options: Options = ()
    host_id: str | None = None

    def __post_init__(self) -> None:
        if type(self.id) is not str or not CONTAINER_ID_RE.fullmatch(self.id):
            check_container_id(self.id, "id")  # raises with the reason
        object.__setattr__(self, "host", check_host(self.host, "ip"))
        port = self.port
        if port is not None and not (type(port) is int and 0 < port < 65536):
            object.__setattr__(self, "port", check_port(port, "port"))
        if self.options:
            object.__setattr__(self, "options", check_options(self.options, CONTAINER_OPTIONS))
        if self.host_id is not None:
            object.__setattr__(self, "host_id", check_host_id(self.host_id, "host"))

    def owned_by(self, host_id: str | None) -> "Container":
        """This container reported by ``host_id`` (already checked: no validation again)."""
        if self.host_id == host_id:
            return self
        new = object.__new__(Container)
        for name in ("id", "host", "port", "options"):
            object.__setattr__(new, name, getattr(self, name))
        object.__setattr__(new, "host_id", host_id)
        return new


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
                {"id": c.id, "address": self.endpoint(c), **({"options": dict(c.options)} if c.options else {}),
                 **({"host": c.host_id} if c.host_id else {})}
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
    ``host_id`` (the payload's ``host``) makes the snapshot the truth for that
    fleet host's containers only; ``None`` keeps the single-host meaning (the
    snapshot is the whole truth).
    ``at`` is when the source saw this state (Unix seconds: the first event of
    a burst, or the request); the pipeline stamps it when a source did not.
    """

    table: str | None
    running: tuple[RunningContainer, ...] = ()
    candidates: tuple[Service, ...] = ()
    candidates_key: str = field(default="candidates", compare=False)
    host_id: str | None = None
    at: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.host_id is not None:
            check_host_id(self.host_id, "host")


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
import cosmos_core.options_rollout  # noqa: E402,F401  (issue 11: healthcheck options register themselves)
import cosmos_core.options_https  # noqa: E402,F401  (registers the https/hsts service options)
import cosmos_core.options_routing  # noqa: E402,F401  (declares the 'path' service option)
import cosmos_core.options_tuning  # noqa: E402,F401  (issue 15: per-service tuning options)
