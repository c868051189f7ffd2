"""A stand-in for ``python:3.11-slim`` built FROM scratch out of the host's Python (no registry here).

The interpreter, its standard library (without tests, IDLE, tkinter and
site-packages, but with pip) and every shared library that ``ldd`` lists for
the interpreter and its extension modules are copied at their host paths, so
the interpreter finds its prefix as on the host; ``/usr/local/bin/python``,
``python3`` and ``pip`` link to it as in the official image, and busybox gives
the ``/bin/sh`` the official image has.  Built like the other test images
(:mod:`tests.support.images`): a deterministic in-memory context, rebuilt only
when its hash changes, labelled ``cosmos-test=1``.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.images import _BUSYBOX_INSTALL, _HOST_BUSYBOX, _build

if TYPE_CHECKING:
    from docker import DockerClient

PYTHON_BASE_IMAGE = "python:3.11-slim"
_SKIP_DIRS = {"test", "tests", "idlelib", "tkinter", "turtledemo", "__pycache__", "site-packages", "dist-packages",
              "ensurepip", "lib2to3", "pydoc_data", "config-3.11-x86_64-linux-gnu"}


def _libraries(paths: list[Path]) -> set[Path]:
    found: set[Path] = set()
    for path in paths:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False).stdout
        found |= {Path(p) for p in re.findall(r"(/\S+) \(0x[0-9a-f]+\)", out)}
    return found


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, mode: int = 0o644,
         link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mode = mode
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
    elif data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def _context() -> bytes:
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    python = python.resolve()
    stdlib = Path(sysconfig.get_paths(vars={"base": sys.base_prefix, "installed_base": sys.base_prefix})["stdlib"])
    site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    import pip

    files: dict[str, tuple[Path, int]] = {}
    for path in sorted(stdlib.rglob("*")):
        relative = path.relative_to(stdlib)
        if any(part in _SKIP_DIRS for part in relative.parts) or not path.is_file():
            continue
        files[str(path)] = (path, 0o755 if path.suffix == ".so" else 0o644)
    pip_dir = Path(pip.__file__).parent
    for path in sorted(pip_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[f"{site}/pip/{path.relative_to(pip_dir)}"] = (path, 0o644)
    binaries = [python, *(Path(p) for p in files if p.endswith(".so"))]
    # The official image is Debian slim: all of libc6, libgcc-s1 and libstdc++6 (compiled wheels such as
    # pydantic-core need librt, libgcc_s...), not only what the interpreter links.
    base_libs = subprocess.run(["dpkg", "-L", "libc6", "libgcc-s1", "libstdc++6"], capture_output=True, text=True,
                               check=True).stdout.split()
    binaries += [Path(p) for p in base_libs if re.search(r"/lib[^/]*\.so[.0-9]*$", p) and Path(p).is_file()]
    for library in sorted(_libraries(binaries) | set(binaries[1:])):
        files[str(library)] = (library.resolve(), 0o755)
    files[str(python)] = (python, 0o755)
    files[str(_HOST_BUSYBOX)] = (_HOST_BUSYBOX, 0o755)
    dockerfile = f"""\
FROM scratch
COPY rootfs/ /
{_BUSYBOX_INSTALL}
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
CMD ["python3"]
"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _add(tar, "Dockerfile", dockerfile.encode())
        for name, (source, mode) in sorted(files.items()):
            _add(tar, f"rootfs{name}", source.read_bytes(), mode)
        for alias in ("python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}"):
            _add(tar, f"rootfs/usr/local/bin/{alias}", link=str(python))
        _add(tar, "rootfs/usr/local/bin/pip", f"#!{python}\nimport sys\nfrom pip._internal.cli.main import main\n"
             "sys.exit(main())\n".encode(), 0o755)
        _add(tar, "rootfs/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "rootfs/etc/group", b"root:x:0:\n")
        _add(tar, "rootfs/tmp", mode=0o1777)
        # The host's Python may live under /root (pyenv); in the official image every user may run it.
        _add(tar, "rootfs/root", mode=0o755)
    return buf.getvalue()


def build_python_base_image(client: DockerClient) -> str:
    """Build ``python:3.11-slim`` from the host's Python (skipped when the context is unchanged); return the tag."""
    return _build(client, PYTHON_BASE_IMAGE, _context())
