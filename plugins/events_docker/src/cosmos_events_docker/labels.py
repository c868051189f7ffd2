"""Pure functions: a container's inspect data -> its routing entry, and entries -> a Snapshot.

Settings come from labels (``cosmos.service``, ``cosmos.mode``,
``cosmos.predicate``, ``cosmos.cookie``, ``cosmos.port``, ``cosmos.network``)
and fall back to the original Cosmonaut env vars (``SERVICE_NAME``,
``CONFIG_MODE``, ``PREDICATE``, ``COOKIE``, ``PORT``); a label wins over an env
var.  Every value is checked by the model's ``check_*`` functions and by the
routing mode's ``normalize``; the first bad one becomes a :class:`LabelProblem`
that names the container and the label (or env var) it came from.  A
``cosmos.*`` label that no setting or declared option reads is reported in
:attr:`Parsed.unknown` (ignored, warned about by the source).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cosmos_core import options as opts
from cosmos_core.errors import CosmosError, ValidationError
from cosmos_core.model import (
    Container,
    RunningContainer,
    Service,
    Snapshot,
)
from cosmos_core.validate import (
    check_container_id,
    check_cookie,
    check_host,
    check_mode,
    check_name,
    check_port,
    check_predicate,
)

#: setting -> (label, env var)
SOURCES: Mapping[str, tuple[str, str | None]] = {
    "service": ("cosmos.service", "SERVICE_NAME"),
    "mode": ("cosmos.mode", "CONFIG_MODE"),
    "predicate": ("cosmos.predicate", "PREDICATE"),
    "cookie": ("cosmos.cookie", "COOKIE"),
    "port": ("cosmos.port", "PORT"),
    "network": ("cosmos.network", None),
    "address": ("cosmos.address", None),
}
#: ``cosmos.address`` values: the container's IP on its network, or the host's
#: advertised address plus the container's published port (fleet hosts without an overlay).
ADDRESS_MODES = ("network", "published")

ID_LENGTH = 12

#: ``check(mode, predicate, mode_field, predicate_field)`` -> canonical predicate.
PredicateCheck = Callable[[str, str, str, str], str]
#: ``routing(mode, field)`` -> the routing mode (``Runtime.routing``).
RoutingLookup = Callable[[str, str], Any]


def routing_check(routing: RoutingLookup) -> PredicateCheck:
    """A :data:`PredicateCheck` from a routing lookup: the mode must be installed
    and its ``normalize`` must accept the predicate."""

    def check(mode: str, predicate: str, mode_field: str, predicate_field: str) -> str:
        implementation = routing(mode, mode_field)
        try:
            return implementation.normalize(predicate)
        except ValueError as exc:
            raise ValidationError(predicate_field, predicate, str(exc)) from None

    return check


@dataclass(frozen=True)
class Setting:
    """A raw value and where it came from (``cosmos.port`` or ``PORT``)."""

    value: str | None
    origin: str


@dataclass(frozen=True)
class Entry:
    """One routable container: the service it claims and its settings."""

    service: Service  # settings plus this one container
    created: str

    @property
    def container(self) -> Container:
        return self.service.containers[0]


@dataclass(frozen=True)
class LabelProblem:
    """Why a container is skipped: one line for the warning."""

    container: str
    label: str
    detail: str  # starts with the label: "cosmos.port: must be a port number (got 'x')"

    def message(self) -> str:
        return f"container {self.container}: {self.detail}"


@dataclass(frozen=True)
class Parsed:
    """The verdict on one container: an entry, a problem, or neither (not ours / not routable).

    ``unknown``: the container's ``cosmos.*`` labels that no setting or declared option reads (a
    misspelling such as ``cosmos.wieght``), each a :class:`LabelProblem` whose detail suggests the
    nearest known label; they are ignored (the container still routes) but warned about.
    """

    entry: Entry | None = None
    problem: LabelProblem | None = None
    unknown: tuple[LabelProblem, ...] = ()


def known_labels() -> frozenset[str]:
    """Every ``cosmos.*`` label Cosmos reads: the settings above and each declared option's label."""
    declared = (spec.label_name for spec in (*opts.SERVICE_OPTIONS.values(), *opts.CONTAINER_OPTIONS.values()))
    return frozenset({label for label, _ in SOURCES.values()} | {label for label in declared if label})


def unknown_labels(name: str, labels: Mapping[str, str] | None) -> tuple[LabelProblem, ...]:
    """The ``cosmos.*`` labels of container ``name`` that nothing reads, in label order, each with a hint."""
    import difflib

    known = known_labels()
    found = []
    for label in sorted(labels or {}):
        if label.startswith(opts.LABEL_PREFIX) and label not in known:
            near = difflib.get_close_matches(label, sorted(known), n=1)
            hint = f"did you mean {near[0]}?" if near else "known: " + ", ".join(sorted(known))
            found.append(LabelProblem(name, label, f"{label}: unknown label, ignored ({hint}) (got {labels[label]!r})"))
    return tuple(found)


def env_map(env: Iterable[str] | None) -> dict[str, str]:
    """``["K=V", ...]`` -> ``{K: V}`` (the later duplicate wins, like Docker)."""
    pairs = (item.partition("=") for item in env or ())
    return {key: value for key, sep, value in pairs if sep}


def read_settings(labels: Mapping[str, str] | None, env: Mapping[str, str]) -> dict[str, Setting]:
    """Each setting from its label, else its env var; ``value`` None when neither is set."""
    labels = labels or {}
    found: dict[str, Setting] = {}
    for key, (label, var) in SOURCES.items():
        if label in labels:
            found[key] = Setting(labels[label], label)
        elif var is not None and var in env:
            found[key] = Setting(env[var], var)
        else:
            found[key] = Setting(None, label)
    return found


def container_name(attrs: Mapping[str, Any]) -> str:
    return str(attrs.get("Name") or "").lstrip("/") or str(attrs.get("Id", ""))[:ID_LENGTH]


def routable(attrs: Mapping[str, Any]) -> bool:
    """Running, not paused, and healthy when the container has a health check."""
    state = attrs.get("State") or {}
    if not state.get("Running") or state.get("Paused") or state.get("Restarting"):
        return False
    health = state.get("Health")
    return not health or health.get("Status") in (None, "", "healthy")


def address(attrs: Mapping[str, Any], network: Setting) -> str:
    """The IP on the chosen network, or on the only network the container has."""
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if network.value:
        chosen = networks.get(network.value)
        if chosen is None:
            raise ValidationError(network.origin, network.value, f"not connected; networks: {', '.join(sorted(networks)) or '(none)'}")
        ip = chosen.get("IPAddress") or chosen.get("GlobalIPv6Address")
        if not ip:
            raise ValidationError(network.origin, network.value, "has no IP address on that network")
        return ip
    with_ip = {name: net.get("IPAddress") or net.get("GlobalIPv6Address") for name, net in networks.items()}
    with_ip = {name: ip for name, ip in with_ip.items() if ip}
    if len(with_ip) != 1:
        reason = "is required: the container has several networks" if with_ip else "the container has no IP address"
        raise ValidationError(network.origin, ", ".join(sorted(with_ip)), reason)
    return next(iter(with_ip.values()))


def published_port(attrs: Mapping[str, Any], port: int, origin: str) -> int:
    """The host port Docker publishes the container's TCP ``port`` on."""
    bindings = ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        host_port = str(binding.get("HostPort") or "")
        if host_port.isdigit():
            return int(host_port)
    raise ValidationError(origin, "published", f"container port {port}/tcp is not published (docker run -p)")


def exposed_port(attrs: Mapping[str, Any]) -> int | None:
    """The one TCP port the image exposes, if exactly one."""
    exposed = ((attrs.get("Config") or {}).get("ExposedPorts")) or {}
    tcp = [key.split("/")[0] for key in exposed if key.endswith("/tcp") or "/" not in key]
    return int(tcp[0]) if len(tcp) == 1 and tcp[0].isdigit() else None


def parse(attrs: Mapping[str, Any], check: PredicateCheck | None = None, name_filter: str | None = None,
          advertise: str | None = None) -> Parsed:
    """The routing entry of one inspected container.

    ``advertise`` (the agent's ``--advertise-address``) routes containers at
    that address and their published port, unless ``cosmos.address=network``;
    ``cosmos.address=published`` needs it.

    ``Parsed()`` when the container is filtered out, claims no service or is
    not routable (stopped, paused, unhealthy); ``Parsed(problem=...)`` when a
    setting is invalid.
    """
    name = container_name(attrs)
    if name_filter and name_filter not in name:
        return Parsed()
    config = attrs.get("Config") or {}
    unknown = unknown_labels(name, config.get("Labels"))
    parsed = _parse(attrs, name, config, check, advertise)
    return replace(parsed, unknown=unknown) if unknown else parsed


def _parse(attrs: Mapping[str, Any], name: str, config: Mapping[str, Any], check: PredicateCheck | None,
           advertise: str | None) -> Parsed:
    found = read_settings(config.get("Labels"), env_map(config.get("Env")))
    if not found["service"].value or not routable(attrs):
        return Parsed()
    current = "service"
    try:
        service = check_name(found["service"].value, found["service"].origin)
        current = "mode"
        mode = check_mode(found["mode"].value, found["mode"].origin)
        current = "predicate"
        predicate = check_predicate(found["predicate"].value, found["predicate"].origin)
        if check is not None:
            current = "mode"  # an unknown mode is the mode's fault; a refused predicate names itself
            predicate = check(mode, predicate, found["mode"].origin, found["predicate"].origin)
        current = "cookie"
        cookie = check_cookie(found["cookie"].value, found["cookie"].origin)
        current = "port"
        port = check_port(found["port"].value, found["port"].origin) or exposed_port(attrs)
        if port is None:
            raise ValidationError(found["port"].origin, None, "is required: the image exposes no single port")
        current = "address"
        via = found["address"].value or ("published" if advertise else "network")
        if via not in ADDRESS_MODES:
            raise ValidationError(found["address"].origin, via, f"must be one of {', '.join(ADDRESS_MODES)}")
        if via == "published":
            if not advertise:
                raise ValidationError(found["address"].origin, via, "needs the agent's --advertise-address")
            host, reach = advertise, published_port(attrs, port, found["address"].origin)
        else:
            current = "network"
            host, reach = check_host(address(attrs, found["network"]), found["network"].origin), port
        labels = config.get("Labels") or {}
        container = Container(check_container_id(str(attrs.get("Id", ""))[:ID_LENGTH]), host, reach,
                              opts.from_labels(labels, opts.CONTAINER_OPTIONS))
        entry = Service(service, mode, predicate, cookie, port, (container,),
                        opts.from_labels(labels, opts.SERVICE_OPTIONS))
    except ValidationError as exc:
        return Parsed(problem=LabelProblem(name, exc.field, str(exc)))
    except CosmosError as exc:  # an unknown routing mode names its field itself
        return Parsed(problem=LabelProblem(name, found[current].origin, str(exc)))
    return Parsed(entry=Entry(entry, str(attrs.get("Created") or "")))


def snapshot(entries: Iterable[Entry], table: str | None) -> Snapshot:
    """All routable containers, and one candidate per service.

    A service's settings come from its most recently created container (ties
    broken by id), so a rolling update with new labels applies them.
    """
    by_service: dict[str, list[Entry]] = {}
    for entry in entries:
        by_service.setdefault(entry.service.name, []).append(entry)
    running: list[RunningContainer] = []
    candidates: list[Service] = []
    for name in sorted(by_service):
        group = sorted(by_service[name], key=lambda e: (e.created, e.container.id))
        newest = group[-1].service
        containers = tuple(e.container for e in group)
        running.extend(RunningContainer(name, c) for c in containers)
        candidates.append(
            Service(newest.name, newest.mode, newest.predicate, newest.cookie, newest.port, containers, newest.options)
        )
    return Snapshot(table, tuple(sorted(running, key=lambda r: (r.service, r.container.id))), tuple(candidates))

