"""A small client for HAProxy's runtime API (stats socket or master CLI).

HAProxy answers commands on a *stats socket* (``stats socket <addr> level
admin`` in ``global``; one worker) or on the *master CLI* (``haproxy -W -S
<addr>``; a command prefixed ``@1`` goes to the current worker, ``@!<pid>``
to a given process, unprefixed ones such as ``show proc`` or ``reload`` to
the master).  In non-interactive mode HAProxy reads one line, runs each of its
``;``-separated commands, writes their answers and closes the connection.

* :class:`RuntimeAPI` sends a batch of commands over one connection and
  returns one :class:`Answer` per command; :meth:`RuntimeAPI.check` raises
  :class:`RuntimeAPIError` naming the first command HAProxy refused.
* Transports (all implement :class:`Transport`): :class:`UnixSocket` (a path on
  this host, e.g. a directory bind-mounted into the HAProxy container),
  :class:`TcpSocket` (``host:port``), and :class:`DockerExec`, which runs
  busybox ``nc`` inside the HAProxy container against a TCP stats socket on
  the container's loopback (busybox ``nc`` cannot open unix sockets), for an
  HAProxy that only Docker can reach.
* Parsers: :func:`parse_servers_state` (``show servers state``),
  :func:`parse_map` (``show map``), :func:`parse_proc` (master ``show proc``).

Commands are single lines of known verbs and validated names; a ``;``, ``\\n``
or ``\\r`` inside a command is refused (:class:`ValueError`) so nothing can
inject another command.  The client is thread-compatible (one connection per
call) and keeps no state.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cosmos_core.errors import CosmosError

TIMEOUT = 5.0
#: After each command the client sends ``show env <_MARK>``, whose answer ("Variable not found") splits
#: the answers reliably (HAProxy has no echo command, and data answers may hold blank lines).
_MARK = "cosmos-end-of-answer"


class RuntimeAPIError(CosmosError):
    """HAProxy refused a command, or the socket could not be reached.

    ``command`` is the refused command (``None`` for a transport failure) and
    ``answer`` HAProxy's text.
    """

    def __init__(self, message: str, command: str | None = None, answer: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.answer = answer

    @property
    def retryable(self) -> bool:  # a socket that is not there yet may be there on the next pass
        return self.command is None


class Transport(Protocol):
    """Sends one line (commands joined by ``;``) on a fresh connection; returns all HAProxy wrote."""

    def exchange(self, line: str, timeout: float) -> str: ...


def _exchange(sock: socket.socket, line: str, timeout: float) -> str:
    sock.settimeout(timeout)
    sock.sendall(line.encode() + b"\n")
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class UnixSocket:
    """A unix socket on this host: ``stats socket /run/haproxy/admin.sock level admin``, or a master CLI."""

    path: str

    def exchange(self, line: str, timeout: float) -> str:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(self.path)
                return _exchange(sock, line, timeout)
        except OSError as exc:
            raise RuntimeAPIError(f"runtime API socket {self.path}: {exc}") from None


@dataclass(frozen=True)
class TcpSocket:
    """A TCP stats socket (``stats socket ipv4@127.0.0.1:9999 level admin``)."""

    host: str
    port: int

    def exchange(self, line: str, timeout: float) -> str:
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
                return _exchange(sock, line, timeout)
        except OSError as exc:
            raise RuntimeAPIError(f"runtime API {self.host}:{self.port}: {exc}") from None


@dataclass
class DockerExec:
    """A TCP stats socket on the loopback of the HAProxy container, reached with ``docker exec ... nc``.

    ``container`` is a docker-py container object (or anything with
    ``exec_run(argv, environment=...)`` returning ``(exit_code, output)``).
    One exec per call (~50-100 ms on Docker 20.10), whatever the number of commands.
    """

    container: Any
    port: int
    host: str = "127.0.0.1"

    def exchange(self, line: str, timeout: float) -> str:
        script = f'printf "%s\\n" "$COSMOS_CMDS" | timeout {max(1, int(timeout))} nc {shlex.quote(self.host)} {int(self.port)}'
        try:
            result = self.container.exec_run(["sh", "-c", script], environment={"COSMOS_CMDS": line})
        except Exception as exc:  # noqa: BLE001 - docker errors of any kind: not reachable
            raise RuntimeAPIError(f"runtime API via docker exec: {exc}") from None
        output = result.output.decode("utf-8", errors="replace") if isinstance(result.output, bytes) else str(result.output)
        if result.exit_code not in (0, None) and not output:
            raise RuntimeAPIError(f"runtime API via docker exec: nc exited {result.exit_code}")
        return output


@dataclass(frozen=True)
class Answer:
    """One command and HAProxy's answer to it (trailing blank lines removed)."""

    command: str
    text: str

    @property
    def ok(self) -> bool:
        return not is_error(self.command, self.text)


#: Answers that mean success although they are not empty.
_SUCCESS_PREFIXES = (
    "IP changed from", "no need to change the addr", "port changed from", "no need to change the port",
    "New server registered.", "Server deleted.", "Transaction created", "Committing ", "Success",
    "Entry added", "Done.",
    # certificates and crt-lists (https, issue 12)
    "New empty certificate store", "Transaction updated", "Inserting certificate", "Entry '", "Certificate '",
)
#: Commands whose answer is data (``show ...``): an answer is an error only if it looks like one.
_DATA_ERRORS = ("Unknown command", "No such", "Can't find", "Unknown backend", "Permission denied", "Require ")


def is_error(command: str, text: str) -> bool:
    """Whether HAProxy's ``text`` refuses ``command`` (HAProxy 2.6 answers in free text)."""
    text = text.strip()
    words = command.split()
    verb = words[1] if words and words[0].startswith("@") and len(words) > 1 else (words[0] if words else "")
    if verb in ("show", "get", "help"):
        return text.startswith(_DATA_ERRORS)
    if not text:
        return False
    return not any(line.startswith(_SUCCESS_PREFIXES) for line in text.splitlines())


def check_command(command: str) -> str:
    """Refuse a command that could smuggle another one in (``;`` or a line break)."""
    if not command or any(c in command for c in ";\n\r"):
        raise ValueError(f"runtime API command must be one non-empty line without ';': {command!r}")
    return command


class RuntimeAPI:
    """Batches of runtime commands over one connection of ``transport``.

    With ``master=True`` the transport is a master CLI: every command goes to
    the current worker (``@1`` prefix) and the batch ends with ``quit`` (the
    2.6 master keeps a connection open otherwise); :meth:`master` sends
    commands to the master itself (``show proc``).
    """

    def __init__(self, transport: Transport, timeout: float = TIMEOUT, master: bool = False) -> None:
        self.transport = transport
        self.timeout = timeout
        self.is_master = master
        self.prefix = "@1 " if master else ""

    def execute(self, commands: Sequence[str]) -> list[Answer]:
        """Run ``commands`` in order over one connection; one :class:`Answer` each.

        Raises :class:`RuntimeAPIError` when the socket cannot be reached or the
        answers cannot be told apart.
        """
        if not commands:
            return []
        for command in commands:
            check_command(command)
        # Each command is followed by an `echo`-like marker so that answers split reliably: HAProxy
        # has no echo, but an unknown-free, cheap command with a fixed answer does: an empty
        # `show env <MARK>` answers "Variable not found" on every version; we split on that line.
        return self._run(commands, self.prefix)

    def master(self, commands: Sequence[str]) -> list[Answer]:
        """Commands for the master process itself (master CLI only), e.g. ``show proc``."""
        if not self.is_master:
            raise ValueError("master commands need a master CLI transport (master=True)")
        for command in commands:
            check_command(command)
        return self._run(commands, "")

    def line(self, commands: Sequence[str], prefix: str | None = None) -> str:
        """The one line that runs ``commands`` (each followed by the answer marker)."""
        prefix = self.prefix if prefix is None else prefix
        marker = f"{self.prefix}show env {_MARK}"
        return ";".join(f"{prefix}{check_command(c)};{marker}" for c in commands) + (";quit" if self.is_master else "")

    def _run(self, commands: Sequence[str], prefix: str) -> list[Answer]:
        return self.answers(commands, self.transport.exchange(self.line(commands, prefix), self.timeout))

    def answers(self, commands: Sequence[str], raw: str) -> list[Answer]:
        """Split what HAProxy wrote for :meth:`line` into one :class:`Answer` per command."""
        parts = _split(raw)
        if len(parts) < len(commands):
            raise RuntimeAPIError(f"runtime API: expected {len(commands)} answers, got {len(parts)}: {raw[-300:]!r}")
        return [Answer(c, text) for c, text in zip(commands, parts)]

    def check(self, commands: Sequence[str]) -> list[Answer]:
        """Like :meth:`execute`, raising :class:`RuntimeAPIError` for the first refused command."""
        return refuse(self.execute(commands))

    def servers_state(self, backend: str | None = None) -> dict[str, dict[str, ServerState]]:
        """``show servers state [backend]`` as ``{backend: {server: ServerState}}``."""
        command = f"show servers state {backend}" if backend else "show servers state"
        return parse_servers_state(self.check([command])[0].text)

    def show_map(self, map_ref: str) -> dict[str, str]:
        """``show map <file or #id>`` as ``{key: value}``."""
        return parse_map(self.check([f"show map {map_ref}"])[0].text)

    # ---------------------------------------------- maps, certificates, crt-lists (https, issue 12)

    def payload(self, command: str, data: str) -> Answer:
        """``command <<`` followed by ``data`` (several lines, e.g. a PEM), on a connection of its own.

        HAProxy reads the payload up to the first empty line, so ``data`` must
        hold none (:class:`ValueError`); the connection carries this one command
        (no answer marker can follow a payload).  Returns HAProxy's answer,
        unchecked; raises :class:`RuntimeAPIError` if the socket cannot be reached.
        """
        check_command(command)
        lines = data.replace("\r\n", "\n").strip("\n").split("\n")
        if not data.strip() or any(not line.strip() for line in lines):
            raise ValueError(f"runtime API payload of {command.split()[0]!r} must be non-empty lines")
        raw = self.transport.exchange(f"{self.prefix}{command} <<\n" + "\n".join(lines) + "\n", self.timeout)
        return Answer(command, raw.strip("\n"))

    def add_map(self, map_ref: str, key: str, value: str) -> None:
        """``add map <map> <key> <value>`` (one word each); :class:`RuntimeAPIError` if refused."""
        self.check([f"add map {word(map_ref)} {word(key)} {word(value)}"])

    def del_map(self, map_ref: str, key: str) -> bool:
        """``del map <map> <key>``: True if the key was there, False if not; else :class:`RuntimeAPIError`."""
        answer = self.execute([f"del map {word(map_ref)} {word(key)}"])[0]
        if answer.text.strip().startswith("Key not found"):
            return False
        refuse([answer])
        return True

    def ssl_certs(self) -> set[str]:
        """The certificate files HAProxy holds in memory (``show ssl cert``; a ``*`` marks an open transaction)."""
        text = self.check(["show ssl cert"])[0].text
        return {line.strip().lstrip("*") for line in text.splitlines() if line.strip() and not line.startswith("#")}

    def new_ssl_cert(self, file: str) -> None:
        """``new ssl cert <file>``: an empty certificate store to ``set`` and ``commit``."""
        self.check([f"new ssl cert {word(file)}"])

    def set_ssl_cert(self, file: str, pem: str | bytes) -> None:
        """``set ssl cert <file> <<PEM``: opens (or updates) the transaction of ``file``."""
        text = pem.decode() if isinstance(pem, bytes) else pem
        answer = self.payload(f"set ssl cert {word(file)}", text)
        if not answer.text.startswith(("Transaction created", "Transaction updated")):
            raise RuntimeAPIError(f"HAProxy refused 'set ssl cert {file}': {_one_line(answer.text)}",
                                  answer.command, answer.text)

    def commit_ssl_cert(self, file: str) -> None:
        """``commit ssl cert <file>``: every bind line using ``file`` serves the new certificate."""
        answer = self.execute([f"commit ssl cert {word(file)}"])[0]
        if "Success" not in answer.text:
            raise RuntimeAPIError(f"HAProxy refused 'commit ssl cert {file}': {_one_line(answer.text)}",
                                  answer.command, answer.text)

    def abort_ssl_cert(self, file: str) -> None:
        """``abort ssl cert <file>`` (the open transaction is dropped; what was served stays)."""
        self.execute([f"abort ssl cert {word(file)}"])

    def del_ssl_cert(self, file: str) -> None:
        """``del ssl cert <file>`` (only once no crt-list or bind line uses it)."""
        self.check([f"del ssl cert {word(file)}"])

    def crt_list(self, crt_list: str) -> list[str]:
        """The certificate files of ``crt_list`` (``show ssl crt-list <file>``), in order."""
        text = self.check([f"show ssl crt-list {word(crt_list)}"])[0].text
        return [line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith("#")]

    def add_crt_list(self, crt_list: str, file: str) -> None:
        """``add ssl crt-list <crt-list> <file>``: the bind lines of ``crt_list`` serve ``file`` too."""
        answer = self.execute([f"add ssl crt-list {word(crt_list)} {word(file)}"])[0]
        if "Success" not in answer.text:
            raise RuntimeAPIError(f"HAProxy refused 'add ssl crt-list {crt_list} {file}': {_one_line(answer.text)}",
                                  answer.command, answer.text)

    def del_crt_list(self, crt_list: str, file: str) -> None:
        """``del ssl crt-list <crt-list> <file>``: ``file`` no longer served by that crt-list's bind lines."""
        self.check([f"del ssl crt-list {word(crt_list)} {word(file)}"])


def word(value: str) -> str:
    """``value`` if it is one non-empty word (a map name, key, file), else :class:`ValueError`."""
    if not value or any(c.isspace() for c in value) or ";" in value:
        raise ValueError(f"runtime API argument must be one word without ';': {value[:60]!r}")
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300] or "(no answer)"


def refuse(answers: list[Answer]) -> list[Answer]:
    """``answers``, or :class:`RuntimeAPIError` for the first command HAProxy refused."""
    for answer in answers:
        if not answer.ok:
            raise RuntimeAPIError(f"HAProxy refused {answer.command!r}: {answer.text.strip()[:300]}", answer.command, answer.text)
    return answers


_NOT_FOUND = "Variable not found"


def _split(raw: str) -> list[str]:
    """Answers between the markers' "Variable not found" lines."""
    parts, current = [], []
    for line in raw.splitlines():
        if line.strip() == _NOT_FOUND:
            parts.append("\n".join(current).strip("\n"))
            current = []
        else:
            current.append(line)
    return parts


# ------------------------------------------------------------------- parsers


#: Operational states (srv_op_state) and admin-state bits (srv_admin_state) of ``show servers state``.
OP_STOPPED, OP_STARTING, OP_RUNNING, OP_STOPPING = 0, 1, 2, 3
ADMIN_FMAINT, ADMIN_IMAINT, ADMIN_CMAINT, ADMIN_FDRAIN, ADMIN_IDRAIN, ADMIN_RMAINT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ADMIN_MAINT = ADMIN_FMAINT | ADMIN_IMAINT | ADMIN_RMAINT  # CMAINT only records a `disabled` in the config
ADMIN_DRAIN = ADMIN_FDRAIN | ADMIN_IDRAIN


@dataclass(frozen=True)
class ServerState:
    """One row of ``show servers state`` (format version 1)."""

    backend: str
    name: str
    address: str
    port: int
    op_state: int
    admin_state: int
    weight: int

    @property
    def maint(self) -> bool:
        return bool(self.admin_state & ADMIN_MAINT)

    @property
    def drain(self) -> bool:
        return bool(self.admin_state & ADMIN_DRAIN)

    @property
    def up(self) -> bool:
        return self.op_state == OP_RUNNING and not self.maint


def parse_servers_state(text: str) -> dict[str, dict[str, ServerState]]:
    """Parse ``show servers state``: a ``1`` version line, a ``# be_id be_name ...`` header, rows.

    Columns are looked up by their header names, so later format additions do
    not shift them.  Raises :class:`RuntimeAPIError` on another format version.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return {}
    if lines[0].strip() != "1":
        raise RuntimeAPIError(f"show servers state: unknown format {lines[0][:50]!r}")
    header: list[str] = []
    found: dict[str, dict[str, ServerState]] = {}
    for line in lines[1:]:
        if line.startswith("#"):
            header = line.lstrip("# ").split()
            continue
        row = dict(zip(header, line.split()))
        try:
            state = ServerState(
                row["be_name"], row["srv_name"], row["srv_addr"], int(row.get("srv_port", 0) or 0),
                int(row["srv_op_state"]), int(row["srv_admin_state"]), int(row.get("srv_uweight", 0) or 0),
            )
        except (KeyError, ValueError):
            raise RuntimeAPIError(f"show servers state: unreadable row {line[:200]!r}") from None
        found.setdefault(state.backend, {})[state.name] = state
    return found


def parse_map(text: str) -> dict[str, str]:
    """Parse ``show map <ref>``: ``<entry id> <key> <value>`` per line."""
    found = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].startswith("0x"):
            found[parts[1]] = parts[2]
    return found


@dataclass(frozen=True)
class Process:
    """One row of the master CLI's ``show proc``.

    ``reloads`` is the row's reload count (a worker's: how many reloads ago it
    was started, 0 for the current one); ``old`` marks a worker listed under
    ``# old workers`` (still finishing its connections after a reload).
    """

    pid: int
    kind: str  # master / worker
    reloads: int
    version: str
    old: bool = False


def parse_proc(text: str) -> list[Process]:
    """Parse ``show proc`` (master CLI): the master, current and old workers, with their reload generation."""
    procs = []
    old = False
    for line in text.splitlines():
        if line.startswith("#"):
            old = "old" in line.lower() and "worker" in line.lower()
            continue
        parts = line.split()
        if len(parts) >= 5 and parts[0].isdigit() and parts[1] in ("master", "worker"):
            procs.append(Process(int(parts[0]), parts[1], int(parts[2]) if parts[2].isdigit() else 0, parts[-1],
                                 old and parts[1] == "worker"))
    return procs


def show_proc(api: RuntimeAPI) -> list[Process]:
    """``show proc`` on a master CLI (``api`` made with ``master=True``); raises :class:`RuntimeAPIError`."""
    processes = parse_proc(refuse(api.master(["show proc"]))[0].text)
    if not any(p.kind == "master" for p in processes):
        raise RuntimeAPIError("show proc: no master in the answer (is this a master CLI, haproxy -W -S?)")
    return processes


def worker_report(processes: Sequence[Process]) -> dict[str, Any]:
    """``{"workers": live worker processes, "current": ..., "old": ..., "pids": [...]}`` from ``show proc``."""
    workers = [p for p in processes if p.kind == "worker"]
    return {"workers": len(workers), "current": sum(not p.old for p in workers), "old": sum(p.old for p in workers),
            "pids": [p.pid for p in workers]}


def transport_for(address: str, container: Any = None) -> Transport:
    """The transport for a runtime API / master CLI ``address``.

    An absolute path is a unix socket on this host; ``ipv4@HOST:PORT`` is TCP,
    reached directly, or with ``container`` (a docker-py container) through
    ``docker exec ... nc`` inside it (the address is then the container's own).
    Raises :class:`ValueError` for another form.
    """
    if address.startswith("/"):
        if container is not None:
            raise ValueError(f"a unix socket inside the HAProxy container cannot be reached with nc: {address!r}; "
                             "use ipv4@127.0.0.1:PORT")
        return UnixSocket(address)
    if address.startswith("ipv4@"):
        host, _, port = address[5:].rpartition(":")
        if host and port.isdigit():
            return DockerExec(container, int(port), host) if container is not None else TcpSocket(host, int(port))
    raise ValueError(f"runtime API address must be an absolute socket path or ipv4@HOST:PORT: {address!r}")


def batch(*groups: Iterable[str]) -> list[str]:
    """The commands of several groups, in order, each checked."""
    return [check_command(command) for group in groups for command in group]


def server_commands(backend: str, server: str, changes: Mapping[str, Any]) -> list[str]:
    """Commands for one server: ``addr`` (``(ip, port)``), ``state`` (ready/drain/maint), ``weight``."""
    commands = []
    if "addr" in changes:
        ip, port = changes["addr"]
        commands.append(f"set server {backend}/{server} addr {ip} port {int(port)}")
    if "weight" in changes:
        commands.append(f"set server {backend}/{server} weight {int(changes['weight'])}")
    if "state" in changes:
        if changes["state"] not in ("ready", "drain", "maint"):
            raise ValueError(f"server state must be ready, drain or maint (got {changes['state']!r})")
        commands.append(f"set server {backend}/{server} state {changes['state']}")
    return commands
