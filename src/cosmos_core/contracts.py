"""What plugins implement: one record type for registration, one protocol per family.

A hook returns a list of :class:`Provides` records (name + factory).  The core
collects them into ``{name: record}`` per family; the factory is only called
once the name is chosen, so heavy imports belong inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING, Any, Callable, Generic, Iterator, Mapping, Protocol, Sequence, TypeVar, runtime_checkable,
)
from urllib.parse import parse_qsl, urlsplit

from cosmos_core.errors import ValidationError

if TYPE_CHECKING:
    from cosmos_core.model import Plan, Service, Snapshot, State
    from cosmos_core.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Provides(Generic[T]):
    """One named implementation: ``factory`` builds it when the name is chosen."""

    name: str
    factory: Callable[..., T]
    description: str = ""


# ---------------------------------------------------------------- state stores


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL: ``scheme://location?key=value``.

    ``location`` is everything between ``scheme://`` and ``?`` (a path for
    ``sqlite``, a table name for ``dynamodb``); ``options`` the query string.
    """

    raw: str
    scheme: str
    location: str
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str, field_name: str = "store") -> "StoreURL":
        if not isinstance(raw, str) or "://" not in raw:
            raise ValidationError(
                field_name, raw, "must be a URL such as sqlite:///path/state.db or dynamodb://TABLE"
            )
        scheme, rest = raw.split("://", 1)
        location, _, query = rest.partition("?")
        if not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
            raise ValidationError(field_name, raw, "has an invalid scheme")
        try:
            options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        except ValueError:
            raise ValidationError(field_name, raw, "has a malformed query string") from None
        return cls(raw=raw, scheme=scheme.lower(), location=location, options=options)

    def __str__(self) -> str:
        return self.raw

    @property
    def safe(self) -> str:
        """The URL without credentials, for messages and logs."""
        parts = urlsplit(self.raw)
        if parts.password:
            return self.raw.replace(parts.password, "***")
        return self.raw


@dataclass(frozen=True)
class ApplyResult:
    """What a store did: how many items/rows it wrote and deleted, and requests made."""

    written: int = 0
    deleted: int = 0
    requests: int = 0


class StateStore(Protocol):
    """Persists services per table (a namespace: the payload's ``tableName``)."""

    def load(self, table: str) -> "State":
        """All services of ``table`` with a token for optimistic locking."""

    def apply(self, table: str, plan: "Plan", base: "State") -> ApplyResult:
        """Write only what ``plan`` changes.

        ``base`` is the state ``plan`` was computed from.  Raise
        :class:`~cosmos_core.errors.ConflictError` if the stored state has moved
        on in a way that makes the plan unsafe; the pipeline then reloads,
        reconciles again and retries.  An empty plan writes nothing.
        """

    def tables(self) -> list[str]:
        """The tables (namespaces) that hold at least one service, sorted."""

    def ping(self) -> None:
        """Raise :class:`~cosmos_core.errors.StoreError` if the store is unreachable."""

    def close(self) -> None:
        """Release connections."""


# --------------------------------------------------------------- routing modes


class RoutingMode(Protocol):
    """Turns a service's predicate into HAProxy ACL criteria."""

    #: Lower precedence is matched first across modes (host rules before path rules).
    precedence: int

    def normalize(self, predicate: str) -> str:
        """The canonical predicate; raise ``ValueError(reason)`` if it is invalid."""

    def criteria(self, predicate: str) -> list[str]:
        """ACL criteria (the text after ``acl NAME``); several lines are ORed."""

    def sort_key(self, predicate: str) -> tuple[Any, ...]:
        """Order within the mode: more specific predicates sort first."""


@dataclass(frozen=True)
class Route:
    """One service's routing rule, ready for the emitter.

    ``backend`` is the HAProxy backend the rule selects (``use_backend``),
    ``acl`` the ACL name, ``criteria`` the ACL lines (ORed), each already
    checked by the core (:func:`cosmos_core.validate.check_config_line`).
    """

    backend: str
    acl: str
    criteria: tuple[str, ...]

    @property
    def service(self) -> str:
        """The former name of :attr:`backend`, kept for existing user templates."""
        return self.backend


# ------------------------------------------------------------- config emitters


class Emitter(Protocol):
    """Renders the config text for a set of services."""

    def render(self, services: Sequence["Service"], routes: Sequence[Route]) -> str:
        """Deterministic config text: ``routes`` are already in match order."""


@runtime_checkable
class RemoteEmitter(Protocol):
    """Optional capability of an emitter: let another Cosmos do the whole pass.

    When the configured emitter has ``remote_config``,
    :func:`cosmos_core.pipeline.generate` sends it the snapshot instead of
    reconciling with the local store and rendering: the remote Cosmos stores
    the state and returns the config (the original Cosmonaut -> Cosmos split).
    Raise a :class:`~cosmos_core.errors.CosmosError` when the remote cannot
    answer; the agent then keeps the config it has.
    """

    def remote_config(self, snapshot: "Snapshot", table: str) -> str:
        """The config the remote Cosmos returns for ``snapshot`` in namespace ``table``."""


# ------------------------------------------------------------------- reloaders


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reloader did: ``reloaded`` False with ``reason`` when it skipped."""

    reloaded: bool
    reason: str = ""


class Reloader(Protocol):
    """Makes a running HAProxy use a new config; keeps the old one on failure."""

    def reload(self, config: str) -> ReloadOutcome:
        """Validate and apply ``config``; raise ReloadError if it could not."""


# --------------------------------------------------------------- event sources


class EventSource(Protocol):
    """Yields snapshots: once for a payload file, on every settled change for Docker."""

    def snapshots(self) -> Iterator["Snapshot"]:
        """Block until the next snapshot is ready; stop iterating when done."""

    def close(self) -> None:
        """Stop producing snapshots (may be called from a signal handler)."""


StoreFactory = Callable[[StoreURL, "Settings"], StateStore]
RoutingFactory = Callable[[], RoutingMode]
EmitterFactory = Callable[["Settings"], Emitter]
ReloaderFactory = Callable[["Settings"], Reloader]
EventSourceFactory = Callable[["Settings"], EventSource]
