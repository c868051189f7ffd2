"""The ``host`` reloader: HAProxy runs on this machine, next to Cosmos.

1. Stage the bundle (main file and auxiliary files) in a temporary directory
   beside ``haproxy_config`` and check it with ``haproxy_bin -c -f``; a refused
   bundle is removed, every live file is left untouched and
   :class:`ReloadError` carries HAProxy's message.
2. Move the files in (:func:`cosmos_core.bundle.install`: all or none).
3. Reload: run ``reload_command`` (split like a shell would, no shell), or send
   ``reload`` to the master CLI socket named by ``[plugins.host] master_socket``
   in ``cosmos.toml`` (HAProxy started with ``-W -S <socket>``).

A bundle equal to the live files is not written and does not reload; a reload
that failed after the install is retried by the next call
(:class:`cosmos_core.reload.InstallingReloader`).

With ``runtime_api`` set (the template's ``stats socket``: a socket path on
this host, or ``ipv4@127.0.0.1:PORT``), container churn in existing services
(a server added, removed, drained or moved) goes through HAProxy's runtime API
with no reload: the new config file is written (so a later reload or restart
starts from the truth), then the ``set server`` commands are sent to the
socket (:meth:`~cosmos_core.reload.InstallingReloader.apply_runtime`).
Anything structural still validates, installs and reloads.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cosmos_core.bundle import Bundle, check_path, install, read_installed
from cosmos_core.contracts import Provides, ReloadOutcome, Setting
from cosmos_core.errors import ReloadError, ValidationError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.logs import get_logger
from cosmos_core.reload import InstallingReloader
from cosmos_core.settings import Settings

log = get_logger("cosmos.reload.host")
TIMEOUT = 30.0


class HostReloader(InstallingReloader):
    """Validate, install as a set and reload a local HAProxy's config bundle.

    The main file goes to ``config_path``; auxiliary files beside it.
    """

    def __init__(self, config_path: str, haproxy_bin: str, reload_command: str | None, master_socket: str | None,
                 runtime_api: str | None = None) -> None:
        if not reload_command and not master_socket:
            raise ValidationError(
                "reload_command", reload_command, "is required by the host reloader (or set [plugins.host] master_socket)"
            )
        super().__init__()
        self.path = Path(config_path)
        self.haproxy_bin = haproxy_bin
        self.reload_argv = shlex.split(reload_command) if reload_command else None
        self.master_socket = master_socket
        from cosmos_core.haproxy.churn import check_runtime_api

        self.runtime_api = check_runtime_api(runtime_api)  # churn without reload (issue 11)

    def apply(self, bundle: Bundle, previous: Bundle | None) -> ReloadOutcome:
        """The runtime API for server-only changes (with ``runtime_api``), else validate, install, reload."""
        if self.runtime_api is not None:
            from cosmos_core.haproxy.runtime_api import RuntimeAPI, transport_for

            api = RuntimeAPI(transport_for(self.runtime_api))
            outcome = self.apply_runtime(bundle, api, lambda config, line: self._send(api, config, line), str(self.path))
            if outcome is not None:
                return outcome
        return super().apply(bundle, previous)

    def _send(self, api: Any, config: str, line: str) -> str:
        """Write the new main file (atomically, no check: only server lines differ from the one HAProxy
        validated) and send ``line`` to the runtime API socket."""
        from cosmos_core.haproxy.runtime_api import RuntimeAPIError

        try:
            install(Bundle.of(config), self.path)
        except OSError as exc:
            raise RuntimeAPIError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return str(api.transport.exchange(line, api.timeout))

    def target(self) -> tuple[int, int, int] | None:
        """The live file's inode, mtime and size: an edit by hand makes it compare again."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def put_files(self, files: Mapping[str, bytes | None]) -> None:
        """Write (``None``: remove) auxiliary files beside the live config, each atomically, private keys
        ``0600``; no check, no reload (https: certificates HAProxy already serves through its runtime API)."""
        from cosmos_core.certs import write_files

        try:
            write_files(self.path.parent, {check_path(p): d for p, d in files.items() if d is not None})
            for path in sorted(p for p, d in files.items() if d is None):
                (self.path.parent / check_path(path)).unlink(missing_ok=True)
        except OSError as exc:
            raise ReloadError(f"cannot write beside {self.path}: {exc.strerror}") from None

    def live(self, bundle: Bundle) -> Bundle | None:
        try:
            return read_installed(bundle, self.path)
        except OSError as exc:
            raise ReloadError(f"cannot read {self.path}: {exc.strerror}") from None

    def install(self, bundle: Bundle, previous: Bundle | None) -> None:
        try:
            install(bundle, self.path, previous, check=self.validate)
        except OSError as exc:
            raise ReloadError(f"cannot install the config at {self.path}: {exc.strerror or exc}") from None

    def reload_haproxy(self) -> None:
        if self.reload_argv is not None:
            run(self.reload_argv, "reload command")
        else:
            master_reload(str(self.master_socket))

    def processes(self) -> list[Any]:
        """HAProxy's processes from the master CLI's ``show proc`` (``master_socket``): a list of
        :class:`~cosmos_core.haproxy.runtime_api.Process` (the master, current and old workers).

        Raises :class:`ReloadError` when no master socket is set or HAProxy cannot be reached.
        """
        from cosmos_core.haproxy.runtime_api import RuntimeAPI, RuntimeAPIError, show_proc, transport_for

        if not self.master_socket:
            raise ReloadError("no master CLI to ask: set [plugins.host] master_socket (HAProxy started with -W -S)")
        try:
            return show_proc(RuntimeAPI(transport_for(self.master_socket), master=True))
        except (RuntimeAPIError, ValueError) as exc:
            raise ReloadError(f"master CLI {self.master_socket}: {exc}") from None

    def check_bundle(self, bundle: Bundle) -> str | None:
        """``haproxy -c`` on a staged copy of ``bundle``: None when valid, else HAProxy's reason (quarantine)."""
        from cosmos_core.quarantine import haproxy_check

        return haproxy_check(self.haproxy_bin)(bundle)

    def validate(self, staged: Path) -> None:
        """``haproxy -c`` on the staged copy (relative paths resolve beside it)."""
        try:
            run([self.haproxy_bin, "-c", "-f", str(staged)], "haproxy -c")
        except ReloadError as exc:
            log.error("haproxy_config_invalid", path=str(self.path), error=str(exc))
            raise ReloadError(f"HAProxy refused the new config (kept the previous one): {exc}", invalid=True) from None


def run(argv: list[str], what: str) -> str:
    """Run ``argv``; raise :class:`ReloadError` with its output when it fails, cannot start or runs longer
    than :data:`TIMEOUT` seconds (then it is killed with everything it started)."""
    from cosmos_core.quarantine import run_bounded

    returncode, output = run_bounded(argv, TIMEOUT, what)
    output = output.strip()
    if returncode != 0:
        raise ReloadError(f"{what} failed ({returncode}): {one_line(output)[-1000:]}")
    return output


def one_line(output: str) -> str:
    """A command's output as one line: its non-blank lines joined with ' | '."""
    return " | ".join(line.strip() for line in output.splitlines() if line.strip())


def master_reload(path: str) -> str:
    """Send ``reload`` to HAProxy's master CLI socket; return its answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            sock.sendall(b"reload\n")
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    except OSError as exc:
        raise ReloadError(f"master socket {path}: {exc}") from None
    answer = b"".join(chunks).decode("utf-8", errors="replace").strip()
    if "Failure" in answer:  # HAProxy >= 2.7 answers "Success=0"; 2.6 answers nothing
        raise ReloadError(f"master socket {path}: {answer[-500:]}")
    return answer


HAPROXY_CONFIG = Setting("haproxy_config", str, "/usr/local/etc/haproxy/haproxy.cfg",
                         "the config file HAProxy reads (auxiliary files go beside it)", section="host")
HAPROXY_BIN = Setting("haproxy_bin", str, "haproxy", "the binary used for haproxy -c", section="host")
RELOAD_COMMAND = Setting("reload_command", str, None,
                         "how to reload (host: a command run without a shell, e.g. 'systemctl reload haproxy')",
                         section="host")
MASTER_SOCKET = Setting("master_socket", str, None,
                        "HAProxy's master CLI (-S; a socket path, or ipv4@HOST:PORT): send 'reload' there instead of "
                        "a command; cosmos status counts the live workers through it", section="host")
SETTINGS = (HAPROXY_CONFIG, HAPROXY_BIN, RELOAD_COMMAND, MASTER_SOCKET)


def make_host(settings: Settings) -> HostReloader:
    return HostReloader(settings.option(HAPROXY_CONFIG), settings.option(HAPROXY_BIN),
                        settings.option(RELOAD_COMMAND), settings.option(MASTER_SOCKET), settings.runtime_api)


@hookimpl
def cosmos_reloaders() -> list[Provides]:
    return [Provides("host", make_host, "validate, install as a set and reload a local HAProxy")]


@hookimpl
def cosmos_settings() -> list[Setting]:
    return list(SETTINGS)
