"""Small file helpers shared by commands and reloaders (I/O lives at the edges)."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], text: str, mode: int = 0o644) -> None:
    """Write ``text`` (UTF-8) to ``path`` so readers see the old or the new file, never a mix."""
    write_bytes(Path(path), text.encode("utf-8"), mode)


def write_bytes(target: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``target`` atomically with ``mode`` set before any byte is written.

    A missing parent directory is created 0700 for a private ``mode`` (no group/other bits), else 0755.
    """
    import tempfile  # not on the CLI start-up path

    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if mode & 0o077 == 0 else 0o755)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
