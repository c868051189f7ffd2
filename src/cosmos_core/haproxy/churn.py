"""Container churn without a reload: what changed between two configs -> runtime commands, or a reload.

Pure functions, no I/O.  The reloader calls :func:`plan` with the config
HAProxy runs (``previous``), the new one (``desired``) and the live servers
(``show servers state``), and gets either runtime commands or the reason why
only a reload will do.

HAProxy 2.6's limits shape the design (see ``/work/shared/notes/testbed.md``):
``add server`` needs a dynamic balance algorithm, inherits nothing from
``default-server``, refuses ``cookie`` and starts in maintenance.  So the
template pre-provisions disabled *spare slots* in every backend (``server
cosmos-spare-N 0.0.0.0:1 disabled check``, :data:`SPARE_PREFIX`); a new
container takes a free slot (``set server addr`` + ``state ready``), a gone
one is put in ``maint`` (in-flight requests finish; no new ones), and a moved
one gets ``set server addr``.  Its cookie then is HAProxy's dynamic cookie for
its address (``cookie NAME ... dynamic`` + ``dynamic-cookie-key``).

Only the server lines of existing backends may differ: a new or removed
backend, a changed route, cookie, template or setting (anything outside the
``server`` lines), or a server whose options differ from the slots', needs a
reload.  The config file is still written on a runtime change, so a later
reload or restart starts from the truth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cosmos_core.haproxy.runtime_api import ServerState

SPARE_PREFIX = "cosmos-spare-"
SPARES = 4  # spare server slots per backend (when the runtime API is on)
_RUNTIME_API = re.compile(r"^(ipv4@(\d{1,3}\.){3}\d{1,3}:\d{1,5}|/[A-Za-z0-9_./-]{1,200})$")


def check_runtime_api(value: str | None) -> str | None:
    """``ipv4@ADDR:PORT`` or an absolute unix socket path; ``None`` / ``"off"`` -> None.

    Raises ValidationError naming ``runtime_api``.
    """
    if value is None or value == "off":
        return None
    address = tcp_port(value) if _RUNTIME_API.match(value) else None
    if not _RUNTIME_API.match(value) or (address is not None and not 0 < address[1] <= 65535):
        from cosmos_core.errors import ValidationError

        raise ValidationError("runtime_api", value, "must be ipv4@ADDRESS:PORT, an absolute socket path, or off")
    return value


def tcp_port(value: str) -> tuple[str, int] | None:
    """(host, port) of an ``ipv4@host:port`` runtime API address, else None."""
    if not value.startswith("ipv4@"):
        return None
    host, _, port = value[5:].rpartition(":")
    return host, int(port)
_SECTION = re.compile(r"^(global|defaults|frontend|backend|listen|peers|resolvers|userlist|program|http-errors|ring|cache|mailers)\b")


@dataclass(frozen=True)
class ServerLine:
    """A ``server`` line: name, address, port and the rest (options without ``cookie <value>``)."""

    name: str
    address: str
    port: int
    options: tuple[str, ...]
    disabled: bool = False  # `disabled` on the line: HAProxy starts it in maintenance

    @property
    def spare(self) -> bool:
        return self.name.startswith(SPARE_PREFIX)


@dataclass(frozen=True)
class Parsed:
    """A config cut in two: everything but the backends' server lines, and those lines per backend."""

    skeleton: str
    servers: Mapping[str, tuple[ServerLine, ...]]
    checked: frozenset[str] = frozenset()  # backends with an HTTP health check (option httpchk)


@dataclass(frozen=True)
class ChurnPlan:
    """Runtime commands (``reload`` False) or the reason a reload is needed."""

    reload: bool
    reason: str = ""
    commands: tuple[str, ...] = ()
    added: int = 0
    removed: int = 0
    moved: int = 0

    def summary(self) -> dict[str, object]:
        return {"added": self.added, "removed": self.removed, "moved": self.moved, "commands": list(self.commands)}


def split_address(text: str) -> tuple[str, int]:
    """``ip:port`` / ``[v6]:port`` -> (ip, port); no port -> 0."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 0
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, 0


def _server(words: list[str]) -> ServerLine:
    address, port = split_address(words[2])
    options: list[str] = []
    skip = disabled = False
    for index, word in enumerate(words[3:]):
        if skip:
            skip = False
            continue
        if word == "cookie":  # the value is per server; it does not make the line structural
            skip = True
            continue
        if word == "disabled":
            disabled = True
            continue
        options.append(word)
    return ServerLine(words[1], address, port, tuple(options), disabled)


def started(config: str) -> dict[str, dict[str, ServerState]]:
    """The servers as HAProxy starts them from ``config`` (what ``show servers state`` says right after a
    reload): every server line at its address, ``disabled`` ones in maintenance, the others ready.

    Lets a reloader plan the first runtime change after its own reload without asking HAProxy.
    """
    from cosmos_core.haproxy.runtime_api import ADMIN_CMAINT, ADMIN_FMAINT, OP_RUNNING, OP_STOPPED

    found: dict[str, dict[str, ServerState]] = {}
    for backend, lines in parse(config).servers.items():
        found[backend] = {
            line.name: ServerState(backend, line.name, line.address, line.port,
                                   OP_STOPPED if line.disabled else OP_RUNNING,
                                   ADMIN_FMAINT | ADMIN_CMAINT if line.disabled else 0, _weight(line.options))
            for line in lines
        }
    return found


def _weight(options: Sequence[str]) -> int:
    for key, value in zip(options, options[1:]):
        if key == "weight" and value.isdigit():
            return int(value)
    return 1


def parse(config: str) -> Parsed:
    """Split ``config`` into its skeleton and the server lines of each backend."""
    skeleton: list[str] = []
    servers: dict[str, list[ServerLine]] = {}
    checked: set[str] = set()
    backend: str | None = None
    for line in config.splitlines():
        stripped = line.strip()
        if _SECTION.match(line):
            words = line.split()
            backend = words[1] if words[0] == "backend" and len(words) > 1 else None
            if backend is not None:
                servers.setdefault(backend, [])
        words = stripped.split()
        if backend is not None and len(words) >= 3 and words[0] == "server":
            servers[backend].append(_server(words))
            continue
        if backend is not None and words[:2] == ["option", "httpchk"]:
            checked.add(backend)
        skeleton.append(line)
    return Parsed("\n".join(skeleton), {name: tuple(lines) for name, lines in servers.items()}, frozenset(checked))


@dataclass
class _Backend:
    name: str
    commands: list[str] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    moved: int = 0


def plan(previous: str | None, desired: str, live: Mapping[str, Mapping[str, ServerState]]) -> ChurnPlan:
    """What it takes to go from ``previous`` (running) to ``desired`` given the ``live`` servers.

    ``live`` is ``show servers state`` as ``{backend: {server: ServerState}}``.
    Returns a reload plan when ``previous`` is unknown, the configs differ
    outside the server lines, a server's options differ from its backend's
    spare slots', or a backend has no free slot left.
    """
    if previous is None:
        return ChurnPlan(True, "no previous config")
    if previous == desired:
        return ChurnPlan(False, "unchanged")
    before, after = parse(previous), parse(desired)
    if before.skeleton != after.skeleton:
        return ChurnPlan(True, "structure changed")
    commands: list[str] = []
    totals = _Backend("")
    for name in sorted(after.servers):
        if before.servers.get(name) == after.servers[name]:
            continue  # the servers this backend's config names are the ones live already
        outcome = _plan_backend(name, after.servers[name], live.get(name, {}), name in after.checked)
        if isinstance(outcome, str):
            return ChurnPlan(True, outcome)
        commands += outcome.commands
        totals.added += outcome.added
        totals.removed += outcome.removed
        totals.moved += outcome.moved
    return ChurnPlan(False, "runtime" if commands else "servers already live", tuple(commands),
                     totals.added, totals.removed, totals.moved)


def _plan_backend(name: str, lines: Sequence[ServerLine], live: Mapping[str, ServerState],
                  checked: bool = False) -> _Backend | str:
    """The commands for one backend.  In a ``checked`` backend (``option httpchk``: ``cosmos.healthcheck``) a
    server put back to ``ready`` is also marked ``health down`` in the same batch, so that it takes traffic only
    once its checks pass (leaving maintenance, HAProxy would otherwise count it up until a check fails)."""
    wanted = [line for line in lines if not line.spare]
    spares = [line for line in lines if line.spare]
    if not spares:
        return f"backend {name} has no spare server slots"
    slot_options = spares[0].options
    if any(line.options != slot_options for line in wanted):
        return f"backend {name}: a server's options differ from its slots'"
    if not live:
        return f"backend {name} is not live"
    result = _Backend(name)
    taken: set[str] = set()
    by_address = {(s.address, s.port): s for s in live.values() if not s.maint}
    pending: list[ServerLine] = []
    for line in wanted:
        same_name = live.get(line.name)
        if same_name is not None:  # a server the config file named: addr and state in place
            taken.add(line.name)
            if (same_name.address, same_name.port) != (line.address, line.port):
                result.commands.append(f"set server {name}/{line.name} addr {line.address} port {line.port}")
                result.moved += 1
            if same_name.maint or same_name.drain:
                result.commands += _ready(name, line.name, checked and same_name.maint)
                result.added += 1
            continue
        current = by_address.get((line.address, line.port))
        if current is not None and current.name not in taken and not current.drain:
            taken.add(current.name)  # already filled at run time
            continue
        pending.append(line)
    # Only spare slots are reused: a server the config named keeps its own cookie value, which must
    # never come to mean another container.
    free = sorted((s for s in live.values() if s.maint and s.name not in taken and s.name.startswith(SPARE_PREFIX)),
                  key=_slot_order)
    for line in pending:
        if not free:
            return f"backend {name}: no free server slot"
        slot = free.pop(0)
        taken.add(slot.name)
        result.commands += [f"set server {name}/{slot.name} addr {line.address} port {line.port}",
                            *_ready(name, slot.name, checked)]
        result.added += 1
    for server in sorted(live.values(), key=_slot_order):
        if server.name not in taken and not server.maint:
            result.commands.append(f"set server {name}/{server.name} state maint")
            result.removed += 1
    return result


def _ready(backend: str, server: str, checked: bool) -> list[str]:
    """``state ready``, followed in a checked backend by ``health down`` (up only once its checks pass)."""
    commands = [f"set server {backend}/{server} state ready"]
    return commands + [f"set server {backend}/{server} health down"] if checked else commands


def _slot_order(server: ServerState) -> tuple[int, str]:
    suffix = server.name[len(SPARE_PREFIX):]
    return (int(suffix), "") if server.name.startswith(SPARE_PREFIX) and suffix.isdigit() else (1 << 30, server.name)


_SET = re.compile(r"^set server (?P<backend>[^/ ]+)/(?P<server>\S+) (?:addr (?P<ip>\S+) port (?P<port>\d+)|state (?P<state>ready|drain|maint)|health (?P<health>down))$")


def applied(live: Mapping[str, Mapping[str, ServerState]], commands: Sequence[str]) -> dict[str, dict[str, ServerState]]:
    """``live`` as it is after HAProxy accepted ``commands`` (the ``set server`` ones :func:`plan` makes).

    Lets a caller keep the live servers between two changes instead of asking
    HAProxy again; only addresses and the maint/drain flags are modelled.
    """
    from dataclasses import replace

    from cosmos_core.haproxy.runtime_api import ADMIN_DRAIN, ADMIN_FDRAIN, ADMIN_FMAINT

    result = {backend: dict(servers) for backend, servers in live.items()}
    for command in commands:
        match = _SET.match(command)
        if match is None:
            raise ValueError(f"not a command the planner makes: {command!r}")
        server = result[match["backend"]][match["server"]]
        if match["health"] is not None:
            continue  # the operational state follows the checks; only addresses and admin flags are modelled
        if match["ip"] is not None:
            server = replace(server, address=match["ip"], port=int(match["port"]))
        else:
            admin = server.admin_state & ~(ADMIN_FMAINT | ADMIN_DRAIN)
            admin |= {"ready": 0, "drain": ADMIN_FDRAIN, "maint": ADMIN_FMAINT}[match["state"]]
            server = replace(server, admin_state=admin)
        result[match["backend"]][match["server"]] = server
    return result
