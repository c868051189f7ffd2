"""The config bundle: a deterministic value, installed every file or none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cosmos_core.bundle import Bundle, install, read_installed
from cosmos_core.errors import ValidationError


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_bundle_is_sorted_read_only_and_compares_by_value() -> None:
    one = Bundle({"maps/b.map": b"b\n", "haproxy.cfg": b"cfg\n", "certs/a.pem": b"pem\n"})
    two = Bundle.of("cfg\n", {"certs/a.pem": b"pem\n", "maps/b.map": b"b\n"})
    assert one == two and hash(one) == hash(two)
    assert list(one.files) == ["certs/a.pem", "haproxy.cfg", "maps/b.map"]
    assert one.config == "cfg\n" and list(one.aux) == ["certs/a.pem", "maps/b.map"]
    with pytest.raises(TypeError):
        one.files["x"] = b""  # type: ignore[index]


def test_changed_and_removed_paths() -> None:
    old = Bundle.of("a", {"maps/x.map": b"1", "maps/gone.map": b"0"})
    new = Bundle.of("a", {"maps/x.map": b"2", "maps/new.map": b"3"})
    assert new.changed(old) == ["maps/new.map", "maps/x.map"]
    assert new.removed(old) == ["maps/gone.map"]
    assert new.changed(None) == ["haproxy.cfg", "maps/new.map", "maps/x.map"] and new.removed(None) == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "maps/../../x", "a//b", ".hidden", "a b", "", "a\nb"])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(ValidationError):
        Bundle({path: b"x", "haproxy.cfg": b""})


def test_values_must_be_bytes_and_main_must_exist() -> None:
    with pytest.raises(ValidationError, match="must be bytes"):
        Bundle({"haproxy.cfg": "text"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="main"):
        Bundle({"other.cfg": b""})


def test_install_writes_main_and_aux_files_beside_it_and_drops_stale_ones(tmp_path: Path) -> None:
    main = tmp_path / "etc" / "my.cfg"
    first = Bundle.of("one\n", {"maps/a.map": b"a 1\n", "maps/old.map": b"x\n"})
    install(first, main)
    assert files(tmp_path / "etc") == {"my.cfg": b"one\n", "maps/a.map": b"a 1\n", "maps/old.map": b"x\n"}
    second = Bundle.of("two\n", {"maps/a.map": b"a 2\n"})
    install(second, main, previous=first)
    assert files(tmp_path / "etc") == {"my.cfg": b"two\n", "maps/a.map": b"a 2\n"}
    assert read_installed(second, main) == second
    assert oct(main.stat().st_mode & 0o777) == "0o644"


def test_a_refused_bundle_leaves_every_previous_file(tmp_path: Path) -> None:
    main = tmp_path / "haproxy.cfg"
    old = Bundle.of("old\n", {"maps/a.map": b"old\n"})
    install(old, main)
    seen: list[dict[str, bytes]] = []

    def refuse(staged: Path) -> None:
        seen.append(files(staged.parent))
        raise RuntimeError("haproxy -c says no")

    with pytest.raises(RuntimeError):
        install(Bundle.of("new\n", {"maps/a.map": b"new\n", "maps/b.map": b"b\n"}), main, old, check=refuse)
    assert seen == [{"haproxy.cfg": b"new\n", "maps/a.map": b"new\n", "maps/b.map": b"b\n"}]  # checked as a set
    assert files(tmp_path) == {"haproxy.cfg": b"old\n", "maps/a.map": b"old\n"}  # no staging left behind


def test_a_move_that_fails_puts_the_files_already_moved_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main = tmp_path / "haproxy.cfg"
    old = Bundle.of("old\n", {"maps/a.map": b"old a\n"})
    install(old, main)
    real_replace = os.replace

    def failing_replace(src, dst):  # type: ignore[no-untyped-def]
        if Path(dst) == main:
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    monkeypatch.setattr("shutil.copyfile", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")))
    with pytest.raises(PermissionError):
        install(Bundle.of("new\n", {"maps/a.map": b"new a\n", "maps/n.map": b"n\n"}), main, old)
    monkeypatch.undo()
    assert files(tmp_path) == {"haproxy.cfg": b"old\n", "maps/a.map": b"old a\n"}
