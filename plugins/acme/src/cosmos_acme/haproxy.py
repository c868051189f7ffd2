"""HAProxy runtime-API operations the ACME resolver needs: challenge map entries and certificates.

Every operation changes the running HAProxy without a reload, through the one
runtime-API client of the core (:class:`cosmos_core.haproxy.runtime_api.RuntimeAPI`,
over a unix socket, TCP, or ``docker exec`` into the HAProxy container) and
:mod:`cosmos_core.haproxy.tls_runtime` for certificates.
"""

from __future__ import annotations

from pathlib import Path

from cosmos_core.haproxy import tls_runtime
from cosmos_core.haproxy.runtime_api import RuntimeAPI, RuntimeAPIError
from cosmos_core.tls import CHALLENGE_MAP, CRT_LIST

__all__ = ["Installer", "RuntimeAPIError"]


class Installer:
    """Challenge answers and certificates into a running HAProxy, through its runtime API ``api``."""

    def __init__(self, api: RuntimeAPI, crt_list: str = CRT_LIST, challenge_map: str = CHALLENGE_MAP,
                 map_file: Path | None = None) -> None:
        self.api = api
        self.crt_list = crt_list
        self.challenge_map = challenge_map
        #: The challenge map on disk (beside the live config), kept equal to the runtime one so a
        #: worker started by a reload during an order answers the challenge too.  None: runtime only.
        self.map_file = map_file
        self.pending: dict[str, str] = {}

    def publish(self, token: str, key_authorization: str) -> None:
        """``/.well-known/acme-challenge/<token>`` answers ``key_authorization`` from now on."""
        self._check_word(token, "token")
        self._check_word(key_authorization, "key authorization")
        self.pending[token] = key_authorization
        self._write_map()
        self.api.del_map(self.challenge_map, token)
        self.api.add_map(self.challenge_map, token, key_authorization)

    def unpublish(self, token: str) -> None:
        self._check_word(token, "token")
        self.pending.pop(token, None)
        self._write_map()
        self.api.del_map(self.challenge_map, token)

    def _write_map(self) -> None:
        if self.map_file is None:
            return
        from cosmos_core.certs import write_files

        text = "".join(f"{t} {v}\n" for t, v in sorted(self.pending.items())).encode()
        write_files(self.map_file.parent, {self.map_file.name: text})

    def worker(self) -> str:
        """The PID of the HAProxy process answering (``show info``): it changes with each reload."""
        return self.worker_info()[0]

    def worker_info(self) -> tuple[str, int]:
        """``(PID, start time in epoch seconds)`` of the HAProxy process answering."""
        text = self.api.check(["show info"])[0].text
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        started = fields.get("Start_time_sec", "0").strip()
        return fields.get("Pid", "").strip(), int(started) if started.isdigit() else 0

    def installed(self) -> set[str]:
        """Certificate files HAProxy holds in memory (``show ssl cert``)."""
        return self.api.ssl_certs()

    def install(self, file: str, pem: bytes) -> str:
        """Load ``pem`` as certificate ``file`` (e.g. ``certs/a.example.com.pem``) and serve it.

        See :func:`cosmos_core.haproxy.tls_runtime.install`; returns ``"added"`` or ``"replaced"``.
        Raises :class:`RuntimeAPIError` naming the command HAProxy refused (what it served before stays).
        """
        self._check_word(file, "certificate file")
        return tls_runtime.install(self.api, file, pem, self.crt_list)

    def withdraw(self, file: str) -> bool:
        """Stop serving certificate ``file`` (out of the crt-list and HAProxy); False if it was not served."""
        self._check_word(file, "certificate file")
        return tls_runtime.withdraw(self.api, file, self.crt_list)

    @staticmethod
    def _check_word(value: str, what: str) -> None:
        if not value or any(c.isspace() for c in value):
            raise RuntimeAPIError(f"{what} must be one word without spaces (got {value[:40]!r})")
