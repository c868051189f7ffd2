"""The config bundle: what an emitter renders and a reloader installs, as one unit.

A :class:`Bundle` maps relative POSIX paths to bytes: the main config
(``haproxy.cfg`` by default) and auxiliary files beside it (``maps/*.map``,
``certs/*.pem``, a ``crt-list`` ...).  The built-in template sets
``default-path config`` in ``global``, so a relative path in the config
resolves against the config file's directory, for the live file as for a
staged copy checked with ``haproxy -c``.

:func:`install` puts a bundle in place beside a main file path: every file is
staged in a temporary directory next to the target, optionally checked there
as a set, then moved in (auxiliary files first, the main file last).  A check
that fails, or a move that fails, leaves every previous file as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from cosmos_core.errors import ValidationError

MAIN = "haproxy.cfg"
#: A relative POSIX path: segments of letters, digits, ``_ . -``, never ``.`` or ``..``.
_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:/[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}){0,7}")


def check_path(path: object, field_name: str = "bundle") -> str:
    """A bundle file name: relative, POSIX, 1-8 segments, no ``..``; else ValidationError."""
    if not isinstance(path, str) or not _PATH.fullmatch(path) or any(s in (".", "..") for s in path.split("/")):
        raise ValidationError(field_name, path, "must be a relative path of letters, digits, '_', '.', '-' segments "
                              "(no '..', no leading '/' or '.')")
    return path


@dataclass(frozen=True)
class Bundle:
    """A deterministic set of config files: ``{relative path: bytes}`` plus the main file's name.

    ``files`` is stored sorted by path and read-only; equal bundles compare equal.
    Raises :class:`~cosmos_core.errors.ValidationError` for a bad path, a value
    that is not ``bytes`` or a ``main`` missing from ``files``.
    """

    files: Mapping[str, bytes]
    main: str = MAIN

    def __post_init__(self) -> None:
        ordered = {}
        for path in sorted(self.files):
            check_path(path)
            content = self.files[path]
            if not isinstance(content, bytes):
                raise ValidationError(f"bundle: {path}", type(content).__name__, "must be bytes")
            ordered[path] = content
        if self.main not in ordered:
            raise ValidationError("bundle: main", self.main, "is not one of the bundle's files")
        object.__setattr__(self, "files", MappingProxyType(ordered))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bundle):
            return NotImplemented
        return self.main == other.main and dict(self.files) == dict(other.files)

    def __hash__(self) -> int:
        return hash((self.main, tuple(self.files.items())))

    @classmethod
    def of(cls, config: str, aux: Mapping[str, bytes] | None = None, main: str = MAIN) -> "Bundle":
        """A bundle of ``config`` (text, UTF-8 encoded) as ``main`` plus ``aux`` files."""
        return cls({**(aux or {}), main: config.encode("utf-8")}, main)

    @property
    def config(self) -> str:
        """The main file as text."""
        return self.files[self.main].decode("utf-8")

    @property
    def aux(self) -> dict[str, bytes]:
        """Every file but the main one, sorted by path."""
        return {path: data for path, data in self.files.items() if path != self.main}

    def changed(self, previous: "Bundle | None") -> list[str]:
        """Paths added or changed since ``previous`` (all of them when it is ``None``), sorted."""
        old = previous.files if previous is not None else {}
        return [path for path, data in self.files.items() if old.get(path) != data]

    def removed(self, previous: "Bundle | None") -> list[str]:
        """Auxiliary paths of ``previous`` that this bundle no longer has, sorted."""
        if previous is None:
            return []
        return [path for path in previous.files if path not in self.files and path != previous.main]

    def write(self, directory: Path) -> None:
        """Write every file under ``directory`` (created), fsynced; mode 0644, or 0600 for private keys
        (``certs/*``, ``*.key``: set before any byte is written)."""
        for path, data in self.files.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = 0o600 if is_private(path) else 0o644
            with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as handle:
                os.fchmod(handle.fileno(), mode)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())


def is_private(path: str) -> bool:
    """Whether a bundle file holds a private key (https: ``certs/<name>.pem``, ``*.key``)."""
    return path.startswith("certs/") or path.endswith(".key")


def target_of(bundle: Bundle, main_path: Path, path: str) -> Path:
    """Where ``path`` of ``bundle`` goes when the main file is installed at ``main_path``."""
    return main_path if path == bundle.main else main_path.parent / path


def read_installed(bundle: Bundle, main_path: Path) -> Bundle | None:
    """The files ``bundle`` would replace, as they are now; ``None`` if any is missing."""
    files = {}
    for path in bundle.files:
        try:
            files[path] = target_of(bundle, main_path, path).read_bytes()
        except FileNotFoundError:
            return None
    return Bundle(files, bundle.main)


def install(bundle: Bundle, main_path: str | os.PathLike[str], previous: Bundle | None = None,
            check: Callable[[Path], None] | None = None) -> None:
    """Install ``bundle`` with its main file at ``main_path``: every file or none.

    1. stage every file in a temporary directory beside ``main_path``;
    2. ``check(staged_main_path)`` if given (e.g. ``haproxy -c``): an exception
       from it propagates and nothing is installed;
    3. move the files in, auxiliary files first and the main file last; if a
       move fails, the files already moved are put back and the
       :class:`OSError` propagates;
    4. delete auxiliary files of ``previous`` that ``bundle`` no longer has.

    The staging directory is always removed.
    """
    import shutil
    import tempfile

    main = Path(main_path)
    main.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".cosmos-stage-", dir=main.parent))
    try:
        staged, backup = stage / "new", stage / "old"
        bundle.write(staged)
        if check is not None:
            check(staged / bundle.main)
        _move_in(bundle, main, staged, backup)
        for path in bundle.removed(previous):
            target_of(previous, main, path).unlink(missing_ok=True)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move_in(bundle: Bundle, main: Path, staged: Path, backup: Path) -> None:
    order = [*bundle.aux, bundle.main]
    moved: list[tuple[Path, Path | None]] = []  # (target, its backup or None if it was new)
    try:
        for path in order:
            target = target_of(bundle, main, path)
            saved: Path | None = None
            if target.exists():
                saved = backup / path
                saved.parent.mkdir(parents=True, exist_ok=True)
                _keep(target, saved)
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace(staged / path, target)
            moved.append((target, saved))
    except OSError:
        _restore(moved)
        raise


def _keep(target: Path, saved: Path) -> None:
    import shutil

    try:
        os.link(target, saved)
    except OSError:
        shutil.copy2(target, saved)


def _replace(source: Path, target: Path) -> None:
    """``os.replace``, or an in-place copy where the target cannot be replaced (a bind-mounted file)."""
    import shutil

    try:
        os.replace(source, target)
    except OSError:
        if not target.is_file():
            raise
        shutil.copyfile(source, target)


def _restore(moved: Iterable[tuple[Path, Path | None]]) -> None:
    for target, saved in reversed(list(moved)):
        try:
            if saved is None:
                target.unlink(missing_ok=True)
            else:
                _replace(saved, target)
        except OSError:
            pass  # best effort: the original error is what the caller reports
