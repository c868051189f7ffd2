"""``cosmos_core.files``: the one atomic file writer (config files, bundle files, certificates, ACME state)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cosmos_core import certs, files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_writes_utf8_text_with_the_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "new" / "haproxy.cfg"
    files.atomic_write(target, "frontend é\n", 0o640)
    assert target.read_bytes() == "frontend é\n".encode()
    assert mode(target) == 0o640
    assert os.listdir(target.parent) == ["haproxy.cfg"]


def test_a_private_file_gets_a_private_new_directory(tmp_path: Path) -> None:
    files.write_bytes(tmp_path / "certs" / "a.pem", b"key", 0o600)
    assert mode(tmp_path / "certs" / "a.pem") == 0o600
    assert mode(tmp_path / "certs") == 0o700
    files.write_bytes(tmp_path / "maps" / "host.map", b"a b\n", 0o644)
    umask = os.umask(0)
    os.umask(umask)
    assert mode(tmp_path / "maps") == 0o755 & ~umask


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "haproxy.cfg"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        files.write_bytes(target, "not bytes", 0o644)  # type: ignore[arg-type]
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["haproxy.cfg"]


def test_certs_keeps_offering_write_bytes() -> None:
    assert certs.write_bytes is files.write_bytes  # cosmos-acme imports it from cosmos_core.certs
