"""The ``docker-exec`` reloader: HAProxy runs in a container; Cosmos does not.

One ``docker exec`` of a small ``sh`` script does the whole sequence inside the
HAProxy container (each exec costs ~100 ms on Docker 20.10, an archive copy as
much, so one round trip keeps the reload fast):

1. write the new config, passed in environment variables, next to the live one
   (``<path>.cosmos-new``);
2. validate it with ``haproxy -c -f``;
3. on success ``mv`` it over the live file (or, where the live file is a
   single-file bind mount that cannot be replaced, copy it over the file in
   place) and reload: ``kill -USR2 1`` (the master-worker master is PID 1) by
   default, or ``reload_command``.  A reload that failed after the file was
   installed is retried on the next call even though the file already matches.

A config HAProxy refuses is removed, the live file stays, and
:class:`ReloadError` carries HAProxy's message, so HAProxy keeps serving.  A
config equal to the one last applied to the same container (same id, same start
time) is skipped; so is, on the first call, one equal to the live file.  A
missing container raises :class:`ReloadError` and nothing is remembered, so the
next snapshot tries again.
"""

from __future__ import annotations

import io
import shlex
import tarfile
from dataclasses import dataclass
from typing import Any

from cosmos_core.contracts import ReloadOutcome
from cosmos_core.errors import ReloadError
from cosmos_core.logs import get_logger
from cosmos_core.settings import Settings

log = get_logger("cosmos.reload.docker_exec")

SUFFIX = ".cosmos-new"
CHUNK = 100_000  # bytes per env var: Linux caps one string at 128 KiB (MAX_ARG_STRLEN)
ENV_PREFIX = "COSMOS_CFG_"
EXIT_INVALID, EXIT_INSTALL, EXIT_RELOAD = 3, 4, 5


@dataclass(frozen=True)
class Exec:
    """One ``docker exec``: argv and environment (pure: built from settings and config)."""

    argv: list[str]
    environment: dict[str, str]


def chunks(config: str, size: int = CHUNK) -> list[str]:
    """``config`` cut into env-var sized pieces (at least one, maybe empty)."""
    return [config[i : i + size] for i in range(0, len(config), size)] or [""]


def reload_exec(config: str, haproxy_bin: str, config_path: str, reload_command: str | None) -> Exec:
    """The exec that writes, validates, installs and reloads ``config``."""
    pieces = chunks(config)
    env = {f"{ENV_PREFIX}{i}": piece for i, piece in enumerate(pieces)}
    parts = " ".join(f'"${ENV_PREFIX}{i}"' for i in range(len(pieces)))
    new, live = shlex.quote(config_path + SUFFIX), shlex.quote(config_path)
    reload = reload_command if reload_command else "kill -USR2 1"
    script = (
        f"printf '%s' {parts} > {new} || exit {EXIT_INSTALL}\n"
        f"if ! out=$({shlex.quote(haproxy_bin)} -c -f {new} 2>&1); then\n"
        f'  echo "$out"; rm -f {new}; exit {EXIT_INVALID}\n'
        "fi\n"
        f"mv -f {new} {live} 2>/dev/null || {{ cat {new} > {live} && rm -f {new}; }} || exit {EXIT_INSTALL}\n"
        f"( {reload} ) 2>&1 || exit {EXIT_RELOAD}\n"
    )
    return Exec(["sh", "-c", script], env)


def untar_one(chunks: Any) -> str | None:
    """The text of the single file in a ``get_archive`` stream."""
    buf = io.BytesIO(b"".join(chunks))
    with tarfile.open(fileobj=buf, mode="r") as tar:
        for member in tar:
            handle = tar.extractfile(member)
            if handle is not None:
                return handle.read().decode("utf-8", errors="replace")
    return None


class DockerExecReloader:
    """Validate and reload HAProxy inside the container named ``haproxy_container``."""

    def __init__(self, settings: Settings) -> None:
        self.container_name = settings.haproxy_container
        self.config_path = settings.haproxy_config
        self.haproxy_bin = settings.haproxy_bin
        self.reload_command = settings.reload_command
        self._client: Any = None
        self._applied: tuple[str, str] | None = None  # (container id + start time, config)
        self._pending = False  # a config was installed but its reload failed

    def _docker(self) -> Any:
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    def _container(self) -> Any:
        import docker.errors

        try:
            container = self._docker().containers.get(self.container_name)
        except docker.errors.NotFound:
            raise ReloadError(
                f"HAProxy container {self.container_name!r} not found; will retry on the next change"
            ) from None
        except docker.errors.DockerException as exc:
            self._client = None
            raise ReloadError(f"Docker unreachable while reloading HAProxy: {exc}") from None
        if container.status != "running":
            raise ReloadError(
                f"HAProxy container {self.container_name!r} is {container.status}; will retry on the next change"
            )
        return container

    def _live_config(self, container: Any) -> str | None:
        import docker.errors

        try:
            chunks, _ = container.get_archive(self.config_path)
        except docker.errors.NotFound:
            return None
        return untar_one(chunks)

    def reload(self, config: str) -> ReloadOutcome:
        import docker.errors

        try:
            return self._reload(config)
        except docker.errors.DockerException as exc:
            self._client = None
            raise ReloadError(f"HAProxy container {self.container_name!r}: {exc}") from None

    def _reload(self, config: str) -> ReloadOutcome:
        container = self._container()
        incarnation = f"{container.id}@{container.attrs.get('State', {}).get('StartedAt', '')}"
        if self._pending:
            pass  # the live file may equal ``config`` but HAProxy never loaded it
        elif self._applied is None or self._applied[0] != incarnation:
            if self._live_config(container) == config:
                self._applied = (incarnation, config)
                return ReloadOutcome(False, "config unchanged (already live)")
        elif self._applied[1] == config:
            return ReloadOutcome(False, "config unchanged")
        self._applied = None  # the live file may change: never skip on a stale record
        job = reload_exec(config, self.haproxy_bin, self.config_path, self.reload_command)
        result = container.exec_run(job.argv, environment=job.environment, stdout=True, stderr=True)
        output = result.output.decode("utf-8", errors="replace").strip()
        if result.exit_code == EXIT_INVALID:
            log.error("haproxy_config_invalid", container=self.container_name, output=output[-2000:])
            raise ReloadError(f"HAProxy refused the new config (kept the previous one): {output[-500:]}", invalid=True)
        if result.exit_code == EXIT_RELOAD:
            self._pending = True
            raise ReloadError(f"reload failed in {self.container_name} (config installed): {output[-500:]}")
        if result.exit_code != 0:
            raise ReloadError(
                f"could not install the config in {self.container_name} (exit {result.exit_code}): {output[-500:]}"
            )
        self._applied, self._pending = (incarnation, config), False
        return ReloadOutcome(True)
