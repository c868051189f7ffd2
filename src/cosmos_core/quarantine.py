"""One bad service never blocks the rest: services HAProxy refuses are kept out of the config.

When HAProxy refuses a config (``ReloadError(invalid=True)``), the agent finds
the services responsible by bisection with ``haproxy -c`` (:func:`find_culprits`:
about ``k * log2(n)`` checks for ``k`` culprits among ``n`` services), installs
the config without them, and keeps them out while they stay as they were
refused: a service that changes (new labels, new containers, new predicate) is
tried again on the next pass.  Each one is logged (``service_quarantined``,
with HAProxy's reason) and listed by ``cosmos status`` (read from the
quarantine file, ``$XDG_STATE_HOME/cosmos/quarantine.json`` unless the
``quarantine_file`` setting says otherwise).

Finding culprits and choosing what to render are pure; checks and the file
are the I/O edges.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from cosmos_core.errors import ReloadError
from cosmos_core.logs import get_logger
from cosmos_core.model import Service

log = get_logger("cosmos.quarantine")

Check = Callable[[Any], "str | None"]  # config (text or bundle) -> None when valid, else HAProxy's message


def find_culprits(names: Sequence[str], passes: Callable[[frozenset[str]], bool]) -> list[str]:
    """The fewest names whose removal makes ``passes`` true, found by bisection.

    ``passes(subset)`` says whether the config of ``subset`` is valid.  Requires
    ``passes(frozenset())`` (the config without any service) to be true; the
    caller checks that.  Returns the culprits in ``names`` order; if ``names``
    passes as a whole, ``[]``.
    """

    def find(base: frozenset[str], suspects: list[str]) -> list[str]:
        # Invariant: passes(base) and not passes(base | suspects).
        if len(suspects) == 1:
            return suspects
        left, right = suspects[: len(suspects) // 2], suspects[len(suspects) // 2:]
        if passes(base | set(left)):
            return find(base | set(left), right)
        bad = find(base, left)
        clean = base | (set(left) - set(bad))
        if passes(clean | set(right)):
            return bad
        return bad + find(clean, right)

    if passes(frozenset(names)):
        return []
    return find(frozenset(), list(names))


@dataclass(frozen=True)
class Quarantined:
    """A service as HAProxy refused it, and why."""

    service: Service
    reason: str


class Quarantine:
    """The services of one table kept out of the config, remembered until they change."""

    def __init__(self, path: Path | None = None, store: str = "", table: str = "") -> None:
        self.path, self.store, self.table = path, store, table
        self.entries: dict[str, Quarantined] = {}

    def current(self, services: Mapping[str, Service]) -> dict[str, Quarantined]:
        """Forget services that changed or are gone; the rest stay out."""
        kept = {n: q for n, q in self.entries.items() if services.get(n) == q.service}
        for name in sorted(set(self.entries) - set(kept)):
            log.info("service_released", service=name, reason="changed or removed; tried again")
        if kept != self.entries:
            self.entries = kept
            self.save()
        return kept

    def add(self, service: Service, reason: str) -> None:
        self.entries[service.name] = Quarantined(service, reason)
        log.error("service_quarantined", service=service.name, reason=reason)
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        data = read_file(self.path)
        tables = data.setdefault(self.store, {})
        tables[self.table] = {n: {"reason": q.reason} for n, q in sorted(self.entries.items())}
        if not tables[self.table]:
            del tables[self.table]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".quarantine-")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def apply(self, services: Mapping[str, Service], bundle: Any, render: Callable[[Mapping[str, Service]], Any],
              apply: Callable[[Any], Any], check: Check | None) -> tuple[Any, Any]:
        """Apply ``bundle`` (of ``services``) minus quarantined services; on refusal, bisect.

        ``apply(bundle)`` is the reloader's; ``render(services)`` the pipeline's.
        Returns ``(outcome, bundle applied)``.  Raises the reloader's
        ReloadError when HAProxy refuses a bundle that no service explains (or
        when no check is available to find out).
        """
        out = self.current(services)
        if out:
            bundle = render({n: s for n, s in services.items() if n not in out})
        try:
            return apply(bundle), bundle
        except ReloadError as exc:
            if not exc.invalid or check is None or not services:
                raise
            refusal = exc
        names = sorted(n for n in services if n not in out)
        reasons: dict[frozenset[str], str | None] = {}

        def passes(subset: frozenset[str]) -> bool:
            if subset not in reasons:
                reasons[subset] = check(render({n: services[n] for n in sorted(subset)}))
            return reasons[subset] is None

        if not passes(frozenset()):
            raise refusal  # the template or settings, not a service
        culprits = find_culprits(names, passes)
        if not culprits:
            raise refusal
        for name in culprits:
            self.add(services[name], check(render({name: services[name]})) or "refused together with other services")
        bundle = render({n: s for n, s in services.items() if n not in self.entries})
        return apply(bundle), bundle


#: Seconds one ``haproxy -c`` may take; a check still running then is killed with its process group.
CHECK_TIMEOUT = 30.0


def haproxy_check(haproxy_bin: str, timeout: float = CHECK_TIMEOUT) -> Check:
    """``haproxy -c`` on a staged copy (text, or a bundle written with its files); None when valid.

    Raises :class:`ReloadError` when ``haproxy_bin`` cannot run or does not finish within ``timeout``
    seconds (it is killed, and whatever it started with it).
    """

    def check(config: Any) -> str | None:
        with tempfile.TemporaryDirectory(prefix="cosmos-check-") as work:
            if hasattr(config, "write") and hasattr(config, "main"):
                config.write(Path(work))
                main = Path(work) / config.main
            else:
                main = Path(work) / "haproxy.cfg"
                main.write_text(config)
            returncode, output = run_bounded([haproxy_bin, "-c", "-f", str(main)], timeout, "haproxy -c")
            if returncode == 0:
                return None
            return reason_of(output)

    return check


def haproxy_bin_found(binary: str, note: str = "") -> bool:
    """Whether ``haproxy_bin`` can run: ``False`` when the default ``haproxy`` is not on PATH.

    A ``binary`` set to anything else (flag, ``COSMOS_HAPROXY_BIN``, ``cosmos.toml``) must be an
    executable file or a command on PATH: else :class:`ValidationError` naming ``haproxy_bin``
    (exit 2), its reason ending with ``note``.
    """
    import shutil

    from cosmos_core.errors import ValidationError

    if shutil.which(binary) is not None:
        return True
    if binary != "haproxy":
        raise ValidationError("haproxy_bin", binary, "is not an executable file (nor a command on PATH)" + note)
    return False


def run_bounded(argv: Sequence[str], timeout: float, what: str) -> tuple[int, str]:
    """Run ``argv`` in its own process group: ``(exit code, stdout + stderr)``.

    A run longer than ``timeout`` seconds is killed with its whole process group (a wrapper script's
    children too) and raises :class:`ReloadError`, as does a binary that cannot be started.
    """
    import signal

    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    except OSError as exc:
        raise ReloadError(f"{what}: cannot run {argv[0]!r}: {exc.strerror or exc}") from None
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise ReloadError(f"{what}: {argv[0]!r} did not finish within {timeout:g} s (killed)") from None
    return proc.returncode, output


_SUMMARIES = ("Fatal errors found", "Error(s) found in configuration file")


def reason_of(output: str) -> str:
    """HAProxy's first specific alert, without its ``[ALERT] (pid) :`` prefix; one line, 300 characters at most."""
    alerts = [line for line in output.splitlines() if "ALERT" in line and not any(s in line for s in _SUMMARIES)]
    line = alerts[0] if alerts else (output.strip().splitlines() or ["refused"])[-1]
    return re.sub(r"^\[ALERT\]\s*\(\d+\)\s*:\s*", "", line.strip())[:300]


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "cosmos" / "quarantine.json"


def read_file(path: Path) -> dict[str, Any]:
    """``{store: {table: {service: {"reason": text}}}}``; empty when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def listed(path: Path, store: str, tables: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{table: {service: reason}}`` of the quarantine file, for ``cosmos status``."""
    data = read_file(path).get(store, {})
    return {t: {n: str(v.get("reason", "")) for n, v in data.get(t, {}).items()} for t in tables if data.get(t)}
