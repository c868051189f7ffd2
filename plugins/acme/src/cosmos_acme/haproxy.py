"""HAProxy runtime-API operations the ACME resolver needs: challenge map entries and certificates.

Every operation changes the running HAProxy without a reload.  The socket
client is a stand-in with the interface of the rollout helper's
``cosmos_core.haproxy.runtime_api`` (``execute(command, payload=None) -> str``);
:class:`Installer` only needs an object with that method.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Protocol

from cosmos_core.errors import CosmosError
from cosmos_core.tls import CHALLENGE_MAP, CRT_LIST


class RuntimeAPIError(CosmosError):
    """HAProxy's runtime API refused a command or could not be reached."""


class RuntimeAPI(Protocol):
    def execute(self, command: str, payload: str | None = None) -> str:
        """Send one command (with an optional ``<<`` payload) and return HAProxy's answer."""


class SocketRuntimeAPI:
    """A runtime-API client on a UNIX socket path or ``host:port`` (one connection per command)."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.address = address
        self.timeout = timeout

    def execute(self, command: str, payload: str | None = None) -> str:
        if "\n" in command:
            raise RuntimeAPIError(f"runtime API command must be one line: {command.split()[0]!r}")
        text = command + "\n" if payload is None else f"{command} <<\n{payload.strip()}\n\n"
        try:
            if self.address.startswith("/") or ":" not in self.address:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.address)
            else:
                host, _, port = self.address.rpartition(":")
                sock = socket.create_connection((host, int(port)), timeout=self.timeout)
            with sock:
                sock.sendall(text.encode())
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise RuntimeAPIError(f"HAProxy runtime API {self.address}: {exc.strerror or exc}") from None
        return b"".join(chunks).decode("utf-8", "replace")


class Installer:
    """Challenge answers and certificates into a running HAProxy, through its runtime API."""

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
        self.api.execute(f"del map {self.challenge_map} {token}")
        self._expect(self.api.execute(f"add map {self.challenge_map} {token} {key_authorization}"), "",
                     f"add map {self.challenge_map}")

    def unpublish(self, token: str) -> None:
        self._check_word(token, "token")
        self.pending.pop(token, None)
        self._write_map()
        self.api.execute(f"del map {self.challenge_map} {token}")

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
        fields = dict(line.split(":", 1) for line in self.api.execute("show info").splitlines() if ":" in line)
        started = fields.get("Start_time_sec", "0").strip()
        return fields.get("Pid", "").strip(), int(started) if started.isdigit() else 0

    def installed(self) -> set[str]:
        """Certificate files HAProxy holds in memory (``show ssl cert``)."""
        answer = self.api.execute("show ssl cert")
        return {line.strip().lstrip("*") for line in answer.splitlines() if line.strip() and not line.startswith("#")}

    def install(self, file: str, pem: bytes) -> str:
        """Load ``pem`` as certificate ``file`` (e.g. ``certs/a.example.com.pem``) and serve it.

        A new file goes ``new ssl cert`` -> ``set`` -> ``commit`` -> ``add ssl crt-list``;
        a known one ``set`` -> ``commit`` (a renewal).  Returns ``"added"`` or ``"replaced"``.
        Raises :class:`RuntimeAPIError` naming the command HAProxy refused (the
        transaction is aborted; what HAProxy served before stays).
        """
        self._check_word(file, "certificate file")
        known = file in self.installed()
        if not known:
            answer = self.api.execute(f"new ssl cert {file}")
            self._expect(answer, "New empty certificate store", f"new ssl cert {file}")
        answer = self.api.execute(f"set ssl cert {file}", pem.decode())
        if "Transaction created" not in answer and "Transaction updated" not in answer:
            self.api.execute(f"abort ssl cert {file}")
            raise RuntimeAPIError(f"HAProxy refused set ssl cert {file}: {_one_line(answer)}")
        answer = self.api.execute(f"commit ssl cert {file}")
        if "Success" not in answer:
            self.api.execute(f"abort ssl cert {file}")
            raise RuntimeAPIError(f"HAProxy refused commit ssl cert {file}: {_one_line(answer)}")
        if not known:
            self._expect(self.api.execute(f"add ssl crt-list {self.crt_list} {file}"), "Success",
                         f"add ssl crt-list {self.crt_list} {file}")
        return "replaced" if known else "added"

    @staticmethod
    def _check_word(value: str, what: str) -> None:
        if not value or any(c.isspace() for c in value):
            raise RuntimeAPIError(f"{what} must be one word without spaces (got {value[:40]!r})")

    @staticmethod
    def _expect(answer: str, needle: str, command: str) -> None:
        if needle and needle not in answer or not needle and answer.strip():
            raise RuntimeAPIError(f"HAProxy refused {command}: {_one_line(answer)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200] or "(no answer)"
