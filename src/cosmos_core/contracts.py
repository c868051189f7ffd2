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
    from cosmos_core.bundle import Bundle
    from cosmos_core.model import Plan, Service, Snapshot, State
    from cosmos_core.passes import Pass
    from cosmos_core.runtime import Runtime
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
    #: Map entries ``(table, key)`` of modes that route by map (``host``, ``path``); empty for ACL-only modes.
    maps: tuple[tuple[str, str], ...] = ()

    @property
    def service(self) -> str:
        """The former name of :attr:`backend`, kept for existing user templates."""
        return self.backend


# ------------------------------------------------------------- config emitters


class Emitter(Protocol):
    """Renders the config bundle for a set of services."""

    def render(self, services: Sequence["Service"], routes: Sequence[Route]) -> "Bundle":
        """A deterministic :class:`~cosmos_core.bundle.Bundle`; ``routes`` are already in match order.

        ``services`` are sorted by name and valid; each route's criteria were
        checked by the core.  Text (``str``) is accepted as the main file, for
        emitters written before bundles.  Raise ``ValidationError`` when a
        template or option is bad.
        """


# ------------------------------------------------------------------- reloaders


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reloader did: ``reloaded`` False with ``reason`` when it skipped."""

    reloaded: bool
    reason: str = ""


class Reloader(Protocol):
    """Makes a running HAProxy use a new bundle; keeps the old one on failure."""

    def apply(self, bundle: "Bundle", previous: "Bundle | None") -> ReloadOutcome:
        """Install ``bundle`` as a unit (every file or none, validated together) and reload.

        ``previous`` is the bundle the agent applied last (``None`` at start),
        so a reloader can tell what changed (``bundle.changed(previous)``) and
        use HAProxy's runtime API instead of a reload.  Return
        ``ReloadOutcome(False, reason)`` when nothing had to be done; raise
        ``ReloadError(invalid=True)`` when HAProxy refuses the bundle (not
        retried), another ``ReloadError`` when it could not be applied (retried).
        :class:`cosmos_core.reload.InstallingReloader` implements this once.
        """


# --------------------------------------------------------------- event sources


class EventSource(Protocol):
    """Yields snapshots: once for a payload file, on every settled change for Docker.

    Optional attribute ``one_shot: bool`` (default ``False``): ``True`` for a source that
    yields once and ends (the payload file), so the agent exits after it.  In fleet mode
    such an agent writes no host record (it could not keep one beating): its containers,
    stamped with its host id, are never expired.
    """

    def snapshots(self) -> Iterator["Snapshot"]:
        """Block until the next snapshot is ready; stop iterating when done."""

    def close(self) -> None:
        """Stop producing snapshots (may be called from a signal handler)."""


@runtime_checkable
class ChecksPredicates(Protocol):
    """Optional capability of an event source: check predicates with the installed routing modes.

    A source that has it (the Docker source) skips one container with a bad
    predicate and keeps the others, instead of the whole snapshot being
    refused.  The agent calls ``use_routing`` once, before the first snapshot,
    with ``lookup(mode, field) -> RoutingMode`` (raises ``UnknownNameError``).
    """

    def use_routing(self, lookup: Callable[[str, str], RoutingMode]) -> None:
        """Remember ``lookup`` and check predicates with it from now on."""


# ------------------------------------------------------------------- settings

SETTING_TYPES: tuple[type, ...] = (str, int, float, bool)


@dataclass(frozen=True)
class Setting:
    """One option a plugin reads, declared through the ``cosmos_settings`` hook.

    * ``name``: the top-level ``cosmos.toml`` key and the default env var
      suffix; lower case letters, digits and ``_`` (``haproxy_container``);
    * ``type``: ``str``, ``int``, ``float`` or ``bool``; env values and flags
      are converted, ``cosmos.toml`` values must already have the type;
    * ``default``: the value when nothing sets it (``None``: unset);
    * ``help``: one line for ``cosmos plugins`` and the README;
    * ``env``: the environment variable (default ``COSMOS_<NAME>``);
    * ``section``: the ``[plugins.SECTION]`` table that may also hold it
      (default: the name the plugin is registered under);
    * ``key``: its key inside that table (default: ``name``).

    Resolution: flag > env var > ``[plugins.SECTION] key`` > top-level
    ``name`` > ``default``.  A plugin reads the value with
    ``settings.option(SETTING)``.
    """

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    env: str | None = None
    section: str | None = None
    key: str | None = None

    @property
    def env_var(self) -> str:
        return self.env or "COSMOS_" + self.name.upper()

    @property
    def table_key(self) -> str:
        return self.key or self.name
# ------------------------------------------------------ certificate resolvers (https)


class CertificateResolver(Protocol):
    """Obtains and renews certificates for the hosts services claim (e.g. ACME), off the pass.

    The agent calls :meth:`observe` after every pass; the resolver works on its
    own thread, installs certificates into the running HAProxy itself (runtime
    API, no reload) and reports every change to the ``subscribe``d callbacks
    so the next bundle carries the certificates as well.
    """

    def certificates(self) -> list[Any]:
        """Every certificate it holds now (:class:`cosmos_core.certs.Certificate`)."""

    def subscribe(self, callback: Callable[[list[Any]], None]) -> None:
        """Call ``callback(certificates)`` after each change."""

    def observe(self, hosts: Sequence[str], reloaded: bool = False) -> None:
        """The host names the latest pass wants certificates for; ``reloaded``: it reloaded HAProxy.

        Cheap: hands the names to the resolver's thread, which waits for HAProxy's new
        worker after a reload before it talks to the runtime API.
        """

    def close(self) -> None:
        """Stop the resolver's thread."""


StoreFactory = Callable[[StoreURL, "Settings"], StateStore]
RoutingFactory = Callable[[], RoutingMode]
EmitterFactory = Callable[["Settings"], Emitter]
ReloaderFactory = Callable[["Settings"], Reloader]
EventSourceFactory = Callable[["Settings"], EventSource]
PassFactory = Callable[["Runtime"], "Pass"]
CertificateResolverFactory = Callable[["Settings"], CertificateResolver]
