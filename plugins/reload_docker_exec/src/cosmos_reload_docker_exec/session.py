"""One long-lived ``sh`` in the HAProxy container: scripts without a new ``docker exec`` each (issue 11).

Every ``docker exec`` costs a runc process set-up (~30-40 ms on a quiet Docker
20.10, 100 ms and more on a busy host) before the script even starts.  The
docker-exec reloader runs one or two short scripts per change, so that set-up
was most of a change's latency.  :class:`ExecSession` opens one ``docker exec -i
sh`` per HAProxy container and feeds it each script on its stdin:

* :func:`session_script` frames one ``sh -c SCRIPT`` with its environment: each
  value travels base64-encoded in a quoted here-document (any bytes, trailing
  newlines kept), the script runs in a subshell with stdin from ``/dev/null``
  (it can never read the session's own input) and its output merged, and a
  marker line with a random token and the exit code ends the answer;
* :meth:`ExecSession.run` has ``exec_run``'s shape (``argv`` must be
  ``["sh", "-c", script]``), so callers switch between the two freely.

Any failure (the container restarted, the stream broke, no marker within the
timeout, no ``base64`` in the image) raises :class:`SessionError`; the reloader
then closes the session and runs that script with a plain ``docker exec``
(the scripts are safe to run again), opening a new session for the next one.
"""

from __future__ import annotations

import base64
import secrets
import shlex
import socket
import struct
from dataclasses import dataclass
from typing import Any

TIMEOUT = 120.0  # seconds for one script (haproxy -c of a very large config included)


class SessionError(Exception):
    """The session cannot run a script (closed, broken, timed out, unusable image)."""


@dataclass(frozen=True)
class Result:
    """What ``exec_run`` returns: the exit code and the merged output."""

    exit_code: int
    output: bytes


def _heredoc(data: bytes, end: str) -> str:
    return base64.encodebytes(data).decode("ascii") + end + "\n"


def session_script(argv: list[str], environment: dict[str, str], token: str) -> str:
    """The input that runs ``argv`` (``sh -c SCRIPT``) with ``environment`` in the session's ``sh``.

    The answer is the script's output followed by ``\\n<token> <exit code>\\n``.
    Raises :class:`SessionError` for another argv shape or a malformed name.
    """
    if len(argv) != 3 or argv[:2] != ["sh", "-c"]:
        raise SessionError(f"a session runs sh -c SCRIPT only, not {argv[:2]!r}")
    end = f"COSMOS_EOF_{token}"
    lines = ["("]
    for name, value in {**environment, "COSMOS_SESSION_SCRIPT": argv[2]}.items():
        if not name.replace("_", "").isalnum() or name[0].isdigit():
            raise SessionError(f"not an environment variable name: {name!r}")
        # `x` appended and cut again: command substitution would drop trailing newlines
        lines.append(f"{name}=$(base64 -d <<'{end}'\n{_heredoc(value.encode() + b'x', end)})"
                     f" && {name}=${{{name}%x}} && export {name} || exit 97")
    lines.append('exec sh -c "$COSMOS_SESSION_SCRIPT"')
    lines.append(") </dev/null 2>&1")
    lines.append(f"printf '\\n%s %s\\n' {shlex.quote(token)} \"$?\"")
    return "\n".join(lines) + "\n"


class ExecSession:
    """``sh`` kept running in ``container`` (a docker-py container) through one ``docker exec -i``."""

    def __init__(self, client: Any, container_id: str, timeout: float = TIMEOUT) -> None:
        self.container_id = container_id
        self.timeout = timeout
        self._buffer = b""
        try:
            created = client.api.exec_create(container_id, ["sh"], stdin=True, stdout=True, stderr=True)
            stream = client.api.exec_start(created["Id"], socket=True)
        except Exception as exc:  # noqa: BLE001 - docker errors of any kind: no session
            raise SessionError(f"cannot open a session: {exc}") from None
        self._stream = stream
        self._sock: socket.socket = getattr(stream, "_sock", stream)
        check = self.run(["sh", "-c", "command -v base64 >/dev/null && base64 -d </dev/null"], {})
        if check.exit_code != 0:
            self.close()
            raise SessionError("the HAProxy container has no base64: sessions are off")

    def run(self, argv: list[str], environment: dict[str, str] | None = None, **_: Any) -> Result:
        """Run ``argv`` (``["sh", "-c", script]``) with ``environment``; ``exec_run``'s result shape."""
        token = "cosmos-done-" + secrets.token_hex(8)
        text = session_script(argv, dict(environment or {}), token)
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(text.encode())
            output = self._read_until(f"\n{token} ".encode())
        except (OSError, ValueError) as exc:
            self.close()
            raise SessionError(f"session broke: {exc}") from None
        body, _, tail = output.rpartition(f"\n{token} ".encode())
        code = tail.split(b"\n", 1)[0].strip()
        if not code.isdigit():
            self.close()
            raise SessionError(f"unreadable exit code {code[:20]!r}")
        return Result(int(code), body)

    def _read_until(self, marker: bytes) -> bytes:
        """Demultiplex the exec stream (8-byte frame headers) until ``marker`` and the line after it."""
        out = b""
        while True:
            while len(self._buffer) >= 8:
                size = struct.unpack(">L", self._buffer[4:8])[0]
                if len(self._buffer) < 8 + size:
                    break
                out += self._buffer[8 : 8 + size]
                self._buffer = self._buffer[8 + size :]
            at = out.find(marker)
            if at >= 0 and out.find(b"\n", at + len(marker)) >= 0:
                return out
            chunk = self._sock.recv(65536)
            if not chunk:
                raise OSError("the session's sh exited")
            self._buffer += chunk

    def close(self) -> None:
        """End the session (its ``sh`` exits when its stdin closes)."""
        for close in (getattr(self._stream, "close", None), getattr(self._sock, "close", None)):
            try:
                if close is not None:
                    close()
            except OSError:
                pass
