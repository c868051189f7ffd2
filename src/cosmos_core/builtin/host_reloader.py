"""The ``host`` reloader: HAProxy runs on this machine, next to Cosmos.

1. Write the new config to a temporary file beside ``haproxy_config`` and check
   it with ``haproxy_bin -c -f``; a refused config is removed, the live file is
   left untouched and :class:`ReloadError` carries HAProxy's message.
2. Replace the live file with :func:`cosmos_core.files.atomic_write`.
3. Reload: run ``reload_command`` (split like a shell would, no shell), or send
   ``reload`` to the master CLI socket named by ``[plugins.host] master_socket``
   in ``cosmos.toml`` (HAProxy started with ``-W -S <socket>``).

A config equal to the live file is not written and does not reload.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import tempfile
from pathlib import Path

from cosmos_core.contracts import Provides, ReloadOutcome
from cosmos_core.errors import ReloadError, ValidationError
from cosmos_core.files import atomic_write
from cosmos_core.hookspecs import hookimpl
from cosmos_core.logs import get_logger
from cosmos_core.settings import Settings

log = get_logger("cosmos.reload.host")
TIMEOUT = 30.0


class HostReloader:
    """Validate, atomically replace and reload a local HAProxy config."""

    def __init__(self, config_path: str, haproxy_bin: str, reload_command: str | None, master_socket: str | None) -> None:
        if not reload_command and not master_socket:
            raise ValidationError(
                "reload_command", reload_command, "is required by the host reloader (or set [plugins.host] master_socket)"
            )
        self.path = Path(config_path)
        self.haproxy_bin = haproxy_bin
        self.reload_argv = shlex.split(reload_command) if reload_command else None
        self.master_socket = master_socket
        self._pending = False  # a config was installed but its reload failed

    def reload(self, config: str) -> ReloadOutcome:
        try:
            if not self._pending and self.path.read_text(encoding="utf-8") == config:
                return ReloadOutcome(False, "config unchanged")
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ReloadError(f"cannot read {self.path}: {exc.strerror}") from None
        self.validate(config)
        try:
            atomic_write(self.path, config)
        except OSError as exc:
            raise ReloadError(f"cannot write {self.path}: {exc.strerror}") from None
        self._pending = True
        if self.reload_argv is not None:
            run(self.reload_argv, "reload command")
        else:
            master_reload(str(self.master_socket))
        self._pending = False
        return ReloadOutcome(True)

    def validate(self, config: str) -> None:
        """``haproxy -c`` on a temporary copy beside the live file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".check", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(config)
            try:
                run([self.haproxy_bin, "-c", "-f", tmp], "haproxy -c")
            except ReloadError as exc:
                log.error("haproxy_config_invalid", path=str(self.path), error=str(exc))
                raise ReloadError(f"HAProxy refused the new config (kept the previous one): {exc}", invalid=True) from None
        finally:
            os.unlink(tmp)


def run(argv: list[str], what: str) -> str:
    """Run ``argv``; raise :class:`ReloadError` with its output when it fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReloadError(f"{what}: cannot run {argv[0]!r}: {exc}") from None
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise ReloadError(f"{what} failed ({done.returncode}): {output[-1000:]}")
    return output


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


def make_host(settings: Settings) -> HostReloader:
    options = settings.plugin("host")
    socket_path = options.get("master_socket")
    if socket_path is not None and not isinstance(socket_path, str):
        raise ValidationError("cosmos.toml: plugins.host.master_socket", socket_path, "must be a path")
    return HostReloader(settings.haproxy_config, settings.haproxy_bin, settings.reload_command, socket_path)


@hookimpl
def cosmos_reloaders() -> list[Provides]:
    return [Provides("host", make_host, "validate, write atomically and reload a local HAProxy")]
