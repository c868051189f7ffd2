"""The ``docker-exec`` reloader: HAProxy runs in a container; Cosmos does not.

One ``docker exec`` of a small ``sh`` script does the whole sequence inside the
HAProxy container (each exec costs ~100 ms on Docker 20.10, an archive copy as
much, so one round trip keeps the reload fast):

1. write every file of the bundle, passed in environment variables, into a
   staging directory beside the live config (``<dir>/.cosmos-stage``);
2. validate the staged set with ``haproxy -c -f`` (relative paths in the config
   resolve against the staged copy: ``default-path config``);
3. on success move the auxiliary files, then the main file, over the live
   ones (where the live file is a single-file bind mount that cannot be
   replaced, copy it over the file in place; private-key files, ``certs/*``
   and ``*.key``, are written and installed with mode 0600), remove auxiliary files the
   previous bundle had and this one has not, and reload: ``kill -USR2 1``
   (the master-worker master is PID 1) by default, or ``reload_command``.

A bundle HAProxy refuses is removed with the staging directory, every live
file stays, and :class:`ReloadError` carries HAProxy's message, so HAProxy keeps
serving.  Unchanged / refused / pending retry follow
:class:`cosmos_core.reload.InstallingReloader`: a bundle equal to the one last
applied to the same container (same id, same start time) is skipped; so is,
for a new container, one equal to the live files.  A missing container raises
:class:`ReloadError` and nothing is remembered, so the next snapshot tries again.

:meth:`DockerExecReloader.check_bundle` (the agent's quarantine uses it to find
the services HAProxy refuses, so no ``haproxy`` is needed on the host) is one
more exec of the same kind: write the bundle into a temporary directory in the
container, ``haproxy -c -f`` it there, remove it; nothing live is touched.

Files travel as text in environment variables, so every file of the bundle must
be UTF-8 without NUL bytes (configs, maps, PEM certificates are).
"""

from __future__ import annotations

import io
import posixpath
import shlex
import tarfile
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from cosmos_core import metrics
from cosmos_core.builtin.host_reloader import one_line
from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ReloadOutcome
from cosmos_core.errors import ReloadError
from cosmos_core.logs import get_logger
from cosmos_core.reload import InstallingReloader
from cosmos_core.settings import Settings

log = get_logger("cosmos.reload.docker_exec")

STAGE = ".cosmos-stage"
CHUNK = 100_000  # bytes per env var: Linux caps one string at 128 KiB (MAX_ARG_STRLEN)
ENV_PREFIX = "COSMOS_CFG_"
EXIT_INVALID, EXIT_INSTALL, EXIT_RELOAD, EXIT_CHECK = 3, 4, 5, 6


@dataclass(frozen=True)
class Exec:
    """One ``docker exec``: argv and environment (pure: built from settings and config)."""

    argv: list[str]
    environment: dict[str, str]


def chunks(text: str, size: int = CHUNK) -> list[str]:
    """``text`` cut into env-var sized pieces (at least one, maybe empty)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _text(bundle: Bundle, path: str) -> str:
    data = bundle.files[path]
    if b"\0" in data:
        raise ReloadError(f"docker-exec carries text files only; {path} of the bundle holds NUL bytes", invalid=True)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReloadError(f"docker-exec carries UTF-8 files only; {path} of the bundle is not", invalid=True) from None


def _under(directory: str, path: str) -> str:
    """``directory`` (``$var`` or ``$var/sub``) joined with ``path``, for ``sh``: ``"$s"/new/path``."""
    variable, _, sub = directory.partition("/")
    return f'"{variable}"' + shlex.quote(posixpath.join("/", sub, path))


def _writes(bundle: Bundle, directory: str, on_failure: str) -> tuple[dict[str, str], list[str]]:
    """Env vars and ``sh`` lines that write every file of ``bundle`` under ``directory`` (auxiliary first).

    The main file's chunks travel in ``COSMOS_CFG_<n>``, auxiliary file ``k``'s
    in ``COSMOS_AUX<k>_<n>``; a failed write runs ``on_failure``.  Raises
    :class:`ReloadError` (invalid) for a file that is not UTF-8 text.
    """
    env: dict[str, str] = {}
    lines = []
    for index, path in enumerate([*bundle.aux, bundle.main]):
        prefix = ENV_PREFIX if path == bundle.main else f"COSMOS_AUX{index}_"
        pieces = chunks(_text(bundle, path))
        env.update({f"{prefix}{i}": piece for i, piece in enumerate(pieces)})
        parts = " ".join(f'"${prefix}{i}"' for i in range(len(pieces)))
        target = _under(directory, path)
        write = f"printf '%s' {parts} > {target}"
        if secret(path):  # a private key: never readable by others, not even while staged
            write = f"( umask 077 && {write} && chmod 600 {target} )"
        lines.append(f"mkdir -p \"$(dirname {target})\" && {write} || {on_failure}")
    return env, lines


def secret(path: str) -> bool:
    """Whether bundle file ``path`` holds a private key (``certs/*``, ``*.key``): installed with mode 0600."""
    return path.startswith("certs/") or path.endswith(".key")


#: The default reload: SIGUSR2 to the master (PID 1), then wait until it forked a new worker (a child of
#: PID 1 that was not there before).  A signal that reaches the master while it is still re-executing
#: itself for the previous reload is lost, so without a new worker it is sent again every second; after
#: 10 s the reload has failed (exit 5).  When the exec returns, the new config is the one HAProxy runs.
SIGNAL_RELOAD = """workers() { for f in /proc/[0-9]*/stat; do read -r p c st pp rest < "$f" 2>/dev/null && [ "$pp" = 1 ] && printf '%s ' "$p"; done; }
before=" $(workers) "
kill -USR2 1 || exit 1
i=0
while :; do
  for p in $(workers); do case "$before" in *" $p "*) ;; *) exit 0;; esac; done
  i=$((i + 1))
  [ "$i" -ge 500 ] && { echo "no new HAProxy worker within 10 s of SIGUSR2 (is PID 1 haproxy -W?)"; exit 1; }
  [ $((i % 50)) = 0 ] && kill -USR2 1
  sleep 0.02
done"""


def reload_exec(bundle: Bundle, haproxy_bin: str, config_path: str, reload_command: str | None,
                previous: Bundle | None = None) -> Exec:
    """The exec that stages, validates (as a set), installs (all or none) and reloads ``bundle``.

    The main file's chunks travel in ``COSMOS_CFG_<n>``, auxiliary file ``k``'s
    in ``COSMOS_AUX<k>_<n>``.  Exit codes: 0 done, :data:`EXIT_INVALID` HAProxy
    refused the staged set (output = its message), :data:`EXIT_INSTALL` a file
    could not be written or moved (every live file restored),
    :data:`EXIT_RELOAD` installed but the reload failed.
    """
    q = shlex.quote
    live = q(config_path)
    directory = posixpath.dirname(config_path) or "."
    stage = q(posixpath.join(directory, STAGE))
    lines = [
        f"d={q(directory)}; s={stage}",
        f'target() {{ if [ "$1" = {q(bundle.main)} ]; then echo {live}; else echo "$d/$1"; fi; }}',
        'undo=""',
        "put() {  # put PATH: keep the live file in $s/.old, then move the staged one over it",
        '  t=$(target "$1")',
        '  if [ -e "$t" ]; then mkdir -p "$(dirname "$s/.old/$1")" && cp -p "$t" "$s/.old/$1" || return 1; fi',
        '  mkdir -p "$(dirname "$t")" || return 1',
        '  mv -f "$s/new/$1" "$t" 2>/dev/null || { cat "$s/new/$1" > "$t"; } || return 1',
        '  undo="$1 $undo"',
        "}",
        "restore() {",
        '  for p in $undo; do t=$(target "$p")',
        '    if [ -e "$s/.old/$p" ]; then cat "$s/.old/$p" > "$t"; else rm -f "$t"; fi',
        "  done",
        "}",
        f'rm -rf "$s" && mkdir -p "$s/new" || exit {EXIT_INSTALL}',
    ]
    order = [*bundle.aux, bundle.main]
    env, writes = _writes(bundle, "$s/new", f'{{ rm -rf "$s"; exit {EXIT_INSTALL}; }}')
    lines += writes
    main_staged = _under("$s/new", bundle.main)
    reload = reload_command if reload_command else SIGNAL_RELOAD
    lines += [
        f"if ! out=$({q(haproxy_bin)} -c -f {main_staged} 2>&1); then",
        f'  echo "$out"; rm -rf "$s"; exit {EXIT_INVALID}',
        "fi",
        *(f'put {q(path)}{_chmod(path)} || {{ restore; rm -rf "$s"; exit {EXIT_INSTALL}; }}' for path in order),
        'rm -rf "$s"',
        *(f'rm -f "$d"/{q(path)}' for path in (bundle.removed(previous))),
        f"( {reload} ) 2>&1 || exit {EXIT_RELOAD}",
    ]
    return Exec(["sh", "-c", "\n".join(lines) + "\n"], env)


def _chmod(path: str) -> str:
    """For a private-key file: `` && chmod 600 <live path>`` (a file copied over a bind mount keeps its old mode)."""
    return f' && chmod 600 "$(target {shlex.quote(path)})"' if secret(path) else ""


def check_exec(bundle: Bundle, haproxy_bin: str) -> Exec:
    """The exec that checks ``bundle`` with ``haproxy -c`` in a temporary directory, touching nothing live.

    Every file is written (mode 0600) under a new directory in ``$TMPDIR`` (or
    ``/tmp``) with the bundle's relative layout, so that ``default-path config``
    resolves relative paths there; the directory is removed whatever the
    outcome.  Exit codes: 0 valid, :data:`EXIT_INVALID` HAProxy refused it
    (output = its message), :data:`EXIT_INSTALL` a file could not be written,
    :data:`EXIT_CHECK` ``haproxy_bin`` could not run (output says why).
    """
    q = shlex.quote
    env, writes = _writes(bundle, "$t", f"exit {EXIT_INSTALL}")
    lines = [
        "umask 077",
        't=$(mktemp -d "${TMPDIR:-/tmp}/cosmos-check.XXXXXX") || exit ' + str(EXIT_INSTALL),
        "trap 'rm -rf \"$t\"' EXIT",
        *writes,
        f"out=$({q(haproxy_bin)} -c -f {_under('$t', bundle.main)} 2>&1); rc=$?",
        '[ "$rc" = 0 ] && exit 0',
        'echo "$out"',
        f'case "$rc" in 126|127) exit {EXIT_CHECK};; esac',
        f"exit {EXIT_INVALID}",
    ]
    return Exec(["sh", "-c", "\n".join(lines) + "\n"], env)


def runtime_exec(config: str, config_path: str, line: str, host: str, port: int) -> Exec:
    """The exec that installs ``config`` without a reload and sends ``line`` to the runtime API.

    No ``haproxy -c``: only server lines differ from the config HAProxy runs,
    which passed it (see :mod:`cosmos_core.haproxy.churn`).  HAProxy's answers
    are the exec's output.
    """
    pieces = chunks(config)
    env = {f"{ENV_PREFIX}{i}": piece for i, piece in enumerate(pieces)} | {"COSMOS_CMDS": line}
    parts = " ".join(f'"${ENV_PREFIX}{i}"' for i in range(len(pieces)))
    live = shlex.quote(config_path)
    new = shlex.quote(config_path + ".cosmos-new")
    script = (
        f"printf '%s' {parts} > {new} || exit {EXIT_INSTALL}\n"
        f"mv -f {new} {live} 2>/dev/null || {{ cat {new} > {live} && rm -f {new}; }} || exit {EXIT_INSTALL}\n"
        f'printf "%s\\n" "$COSMOS_CMDS" | timeout 5 nc {shlex.quote(host)} {int(port)} || exit {EXIT_RELOAD}\n'
    )
    return Exec(["sh", "-c", script], env)


def files_exec(files: Mapping[str, bytes | None], config_path: str) -> Exec:
    """The exec that writes (``None``: removes) auxiliary files beside ``config_path``, no check, no reload.

    Each file is written beside its target (private keys under ``umask 077``,
    mode 0600) and moved over it, so HAProxy never reads half a file.  Exit
    codes: 0 done, :data:`EXIT_INSTALL` a file could not be written.
    """
    q = shlex.quote
    env: dict[str, str] = {}
    lines = [f"d={q(posixpath.dirname(config_path) or '.')}"]
    for index, (path, data) in enumerate(sorted(files.items())):
        target = _under("$d", path)
        if data is None:
            lines.append(f"rm -f {target} || exit {EXIT_INSTALL}")
            continue
        if b"\0" in data:
            raise ReloadError(f"docker-exec carries text files only; {path} holds NUL bytes", invalid=True)
        pieces = chunks(data.decode("utf-8"))
        env.update({f"COSMOS_AUX{index}_{i}": piece for i, piece in enumerate(pieces)})
        parts = " ".join(f'"$COSMOS_AUX{index}_{i}"' for i in range(len(pieces)))
        new = _under("$d", path + ".cosmos-new")
        write = f"printf '%s' {parts} > {new}"
        if secret(path):
            write = f"( umask 077 && {write} && chmod 600 {new} )"
        lines.append(f'mkdir -p "$(dirname {target})" && {write} && mv -f {new} {target} || exit {EXIT_INSTALL}')
    return Exec(["sh", "-c", "\n".join(lines) + "\n"], env)


def untar(chunks: Any) -> dict[str, bytes]:
    """``{name: bytes}`` of the regular files in a ``get_archive`` stream (names without the top directory)."""
    buf = io.BytesIO(b"".join(chunks))
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=buf, mode="r") as tar:
        for member in tar:
            handle = tar.extractfile(member)
            if handle is not None:
                files[member.name.split("/", 1)[1] if "/" in member.name else member.name] = handle.read()
    return files


class DockerExecReloader(InstallingReloader):
    """Validate and reload HAProxy inside the container named ``haproxy_container``."""

    #: Run the scripts through one long-lived ``sh`` per HAProxy container (``False``: one exec each).
    sessions = True

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        from cosmos_reload_docker_exec.plugin import HAPROXY_CONTAINER, SHARED

        config, binary, command, master = SHARED
        self.master_socket = settings.option(master)
        self.container_name = settings.option(HAPROXY_CONTAINER)
        self.config_path = settings.option(config)
        self.haproxy_bin = settings.option(binary)
        self.reload_command = settings.option(command)
        self._client: Any = None
        self._current: Any = None  # the container found by target()
        self._applying = False  # inside apply(): target() is looked up once
        self._session: Any = None  # the long-lived sh in the HAProxy container (session.ExecSession)
        self._session_lock = threading.Lock()
        self._no_session: set[str] = set()  # containers where a session could not be opened
        self._target: Hashable | None = None
        self._reload_failure: str | None = None
        from cosmos_core.haproxy.churn import check_runtime_api, tcp_port

        api = check_runtime_api(settings.runtime_api)
        self.runtime = tcp_port(api) if api else None  # (host, port) inside the container: churn without reload

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

    def target(self) -> Hashable:
        """The container's id and start time: a restarted container is compared with its files again.

        Looked up once per :meth:`apply` (one inspect call, not one per step).
        """
        if self._target is not None:
            return self._target
        container = self._container()
        self._current = container
        found = f"{container.id}@{container.attrs.get('State', {}).get('StartedAt', '')}"
        if self._applying:
            self._target = found
        return found

    def live(self, bundle: Bundle) -> Bundle | None:
        """The container's files at ``bundle``'s paths: one archive of the config (or its directory)."""
        if not bundle.aux:
            files = self._archive(self.config_path)
            return Bundle({bundle.main: next(iter(files.values()))}, bundle.main) if files else None
        files = self._archive(posixpath.dirname(self.config_path) or "/")
        name = posixpath.basename(self.config_path)
        found = {path: files.get(name if path == bundle.main else path) for path in bundle.files}
        if any(data is None for data in found.values()):
            return None
        return Bundle(found, bundle.main)  # type: ignore[arg-type]

    def _archive(self, path: str) -> dict[str, bytes]:
        import docker.errors

        try:
            chunks, _ = self._current.get_archive(path)
        except docker.errors.NotFound:
            return {}
        return untar(chunks)

    def apply(self, bundle: Bundle, previous: Bundle | None) -> ReloadOutcome:
        """See :class:`~cosmos_core.reload.InstallingReloader`; Docker errors become ReloadError."""
        import docker.errors

        self._applying, self._target = True, None
        try:
            outcome = self._runtime(bundle) if self.runtime is not None else None
            return outcome if outcome is not None else super().apply(bundle, previous)
        except docker.errors.DockerException as exc:
            self._client = None
            raise ReloadError(f"HAProxy container {self.container_name!r}: {exc}") from None
        finally:
            self._applying, self._target = False, None

    def _runtime(self, bundle: Bundle) -> ReloadOutcome | None:
        """Apply a change of servers only through the runtime API (one exec: install the file, send the
        commands with ``nc``); ``None``: the full path must run.  See
        :meth:`~cosmos_core.reload.InstallingReloader.apply_runtime`."""
        from cosmos_core.haproxy.runtime_api import DockerExec, RuntimeAPI, RuntimeAPIError

        assert self.runtime is not None
        host, port = self.runtime
        reloader = self

        class Current:  # the container target() found for this apply (looked up once)
            def exec_run(self, argv: list[str], environment: dict[str, str] | None = None, **_: Any) -> Any:
                return reloader._exec(Exec(argv, dict(environment or {})))

        def send(config: str, line: str) -> str:
            job = runtime_exec(config, self.config_path, line, host, port)
            result = self._exec(job)
            output = result.output.decode("utf-8", errors="replace")
            if result.exit_code != 0:
                raise RuntimeAPIError(f"exec exited {result.exit_code}: {output[-500:]}")
            return output

        api = RuntimeAPI(DockerExec(Current(), port, host))
        return self.apply_runtime(bundle, api, send, self.container_name)

    def _exec(self, job: Exec) -> Any:
        """Run ``job`` in the container :meth:`target` found: through the long-lived ``sh`` session
        (:mod:`cosmos_reload_docker_exec.session`: no exec set-up per change) when it works, else with a
        plain ``docker exec``.  Returns ``exec_run``'s result (``exit_code``, ``output``)."""
        from cosmos_reload_docker_exec.session import ExecSession, SessionError

        container = self._current
        with self._session_lock:
            if self.sessions and container.id not in self._no_session:
                opening = self._session is None or self._session.container_id != container.id
                try:
                    if opening:
                        if self._session is not None:
                            self._session.close()
                        self._session = None
                        self._session = ExecSession(self._docker(), container.id)
                    return self._session.run(job.argv, job.environment)
                except SessionError as exc:
                    log.info("exec_session_unavailable", container=self.container_name, error=str(exc))
                    self._session = None
                    if opening:
                        self._no_session.add(container.id)  # this container cannot hold one: plain execs
        return container.exec_run(job.argv, environment=job.environment, stdout=True, stderr=True)

    def install(self, bundle: Bundle, previous: Bundle | None) -> None:
        """One exec: stage, validate, install and reload (a failed reload is raised by :meth:`reload_haproxy`)."""
        job = reload_exec(bundle, self.haproxy_bin, self.config_path, self.reload_command, previous)
        result = self._exec(job)
        output = one_line(result.output.decode("utf-8", errors="replace"))
        if result.exit_code == EXIT_INVALID:
            log.error("haproxy_config_invalid", container=self.container_name, output=output[-2000:])
            raise ReloadError(f"HAProxy refused the new config (kept the previous one): {output[-500:]}", invalid=True)
        if result.exit_code == EXIT_RELOAD:
            self._reload_failure = f"reload failed in {self.container_name} (config installed): {output[-500:]}"
        elif result.exit_code != 0:
            raise ReloadError(
                f"could not install the config in {self.container_name} (exit {result.exit_code}): {output[-500:]}"
            )

    def put_files(self, files: Mapping[str, bytes | None]) -> None:
        """Write (``None``: remove) auxiliary files beside the live config in the container: one exec,
        no check, no reload (https: certificates HAProxy already serves through its runtime API).

        Raises :class:`ReloadError` when the container is missing or a file cannot be written.
        """
        import docker.errors

        if posixpath.basename(self.config_path) in files:
            raise ReloadError("put_files writes auxiliary files only, not the main config", invalid=True)
        try:
            job = files_exec(files, self.config_path)
            result = self._container().exec_run(job.argv, environment=job.environment, stdout=True, stderr=True)
        except docker.errors.DockerException as exc:
            self._client = None
            raise ReloadError(f"HAProxy container {self.container_name!r}: {exc}") from None
        if result.exit_code != 0:
            output = one_line(result.output.decode("utf-8", errors="replace"))
            raise ReloadError(f"could not write files in {self.container_name} (exit {result.exit_code}): {output[-300:]}")

    def processes(self) -> list[Any]:
        """HAProxy's processes from the master CLI's ``show proc`` inside the container (``master_socket``,
        ``ipv4@127.0.0.1:PORT``; one exec of ``nc``): a list of
        :class:`~cosmos_core.haproxy.runtime_api.Process` (the master, current and old workers).

        Raises :class:`ReloadError` when no master socket is set, the container
        is missing or HAProxy does not answer.
        """
        from cosmos_core.haproxy.runtime_api import RuntimeAPI, RuntimeAPIError, show_proc, transport_for

        if not self.master_socket:
            raise ReloadError("no master CLI to ask: set master_socket (HAProxy started with -W -S ipv4@127.0.0.1:PORT)")
        try:
            return show_proc(RuntimeAPI(transport_for(self.master_socket, self._container()), master=True))
        except (RuntimeAPIError, ValueError) as exc:
            raise ReloadError(f"master CLI {self.master_socket} in {self.container_name!r}: {exc}") from None

    def check_bundle(self, bundle: Bundle) -> str | None:
        """``haproxy -c`` on a copy of ``bundle`` inside the HAProxy container (one exec; nothing live is touched).

        Returns None when HAProxy accepts it, else HAProxy's reason (one line,
        as :func:`cosmos_core.quarantine.haproxy_check` gives it); a file the
        exec cannot carry (not UTF-8 text) is such a reason too.  Raises
        :class:`ReloadError` when the container is missing or not running,
        Docker cannot be reached, or the check cannot run there.  Used by the
        agent to find the services HAProxy refuses (:mod:`cosmos_core.quarantine`).
        """
        import docker.errors

        from cosmos_core.quarantine import reason_of

        if not isinstance(bundle, Bundle):
            bundle = Bundle.of(str(bundle))
        try:
            job = check_exec(bundle, self.haproxy_bin)
        except ReloadError as exc:
            return str(exc)
        try:
            result = self._container().exec_run(job.argv, environment=job.environment, stdout=True, stderr=True)
        except docker.errors.DockerException as exc:
            self._client = None
            raise ReloadError(f"haproxy -c in container {self.container_name!r}: {exc}") from None
        output = result.output.decode("utf-8", errors="replace")
        if result.exit_code == 0:
            return None
        if result.exit_code == EXIT_INVALID:
            return reason_of(output)
        raise ReloadError(f"haproxy -c in container {self.container_name!r} could not run "
                          f"(exit {result.exit_code}): {one_line(output)[-500:]}")

    def reload_haproxy(self) -> None:
        """The exec of :meth:`install` reloaded already; raise its reload failure, if any."""
        failure, self._reload_failure = self._reload_failure, None
        if failure is not None:
            raise ReloadError(failure)
