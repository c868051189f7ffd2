"""FROM-scratch test images built out of host binaries, plus container helpers.

No image registry is reachable, so both images are assembled from the host's
own files: the build context is an in-memory tar (deterministic: fixed owner,
modes and mtimes), and its SHA-256 is stored as an image label so that an
unchanged image is never rebuilt.

Every image and container made here carries the label ``cosmos-test=1``;
:func:`remove_test_containers` removes the containers by that label.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import re
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

TEST_LABEL = "cosmos-test"
SESSION_LABEL = "cosmos-test.session"
#: Unique per test process, so that concurrent test runs never remove each other's containers.
SESSION_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
TEST_LABELS: Mapping[str, str] = {TEST_LABEL: "1", SESSION_LABEL: SESSION_ID}
HASH_LABEL = "cosmos-test.context-sha256"

HAPROXY_IMAGE = "cosmos-test/haproxy:latest"
BACKEND_IMAGE = "cosmos-test/httpd:latest"
HAPROXY_CFG = "/usr/local/etc/haproxy/haproxy.cfg"
HAPROXY_CFG_DIR = str(Path(HAPROXY_CFG).parent)
BACKEND_PORT = 8080

_HOST_HAPROXY = Path("/usr/sbin/haproxy")
_HOST_BUSYBOX = Path("/bin/busybox")
_BUSYBOX_INSTALL = 'RUN ["/bin/busybox", "--install", "-s", "/bin"]'

HAPROXY_STARTER_CFG = """\
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend http
    bind :80
    http-request return status 200 content-type text/plain string "cosmos-test haproxy"
"""

_PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "haproxy:x:99:99:haproxy:/var/lib/haproxy:/bin/false\n"
)
_GROUP = "root:x:0:\nhaproxy:x:99:\n"

_BACKEND_ENTRYPOINT = f"""\
#!/bin/sh
# Serve the container's hostname at / and a cookie-setting CGI at /cgi-bin/sticky.
set -e
mkdir -p /www/cgi-bin
hostname > /www/index.html
cat > /www/cgi-bin/sticky <<'EOF'
#!/bin/sh
echo "Content-Type: text/plain"
echo "Set-Cookie: SRV=$(hostname)-sess"
echo
hostname
EOF
chmod 755 /www/cgi-bin/sticky
exec httpd -f -p {BACKEND_PORT} -h /www
"""

Source = bytes | str | Path | None
"""An image entry's content: bytes/str, a host file to copy, or None for a directory."""


# --------------------------------------------------------------------------- builds


def _host_libraries(binary: Path) -> list[Path]:
    """Return every library (and the dynamic loader) that ``ldd`` lists for *binary*."""
    out = subprocess.run(
        ["ldd", str(binary)], check=True, capture_output=True, text=True
    ).stdout
    return sorted({Path(p) for p in re.findall(r"(/\S+) \(0x[0-9a-f]+\)", out)})


def _build_context(dockerfile: str, entries: Mapping[str, tuple[Source, int]]) -> bytes:
    """Return a build-context tar: the Dockerfile plus ``rootfs/<path>`` per entry.

    *entries* maps an absolute path inside the image to ``(source, mode)``.
    Host files are read through symlinks, so each path holds real content.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        files = {"Dockerfile": (dockerfile, 0o644)} | {
            f"rootfs{path}": entry for path, entry in entries.items()
        }
        for name, (source, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.mode = mode
            if source is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            data = source.read_bytes() if isinstance(source, Path) else source
            data = data.encode() if isinstance(data, str) else data
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _build(client: DockerClient, tag: str, context: bytes) -> str:
    """Build *context* as *tag* unless an image with the same context hash exists."""
    import docker.errors

    digest = hashlib.sha256(context).hexdigest()
    try:
        old = client.images.get(tag)
    except docker.errors.ImageNotFound:
        old = None
    if old is not None and old.labels.get(HASH_LABEL) == digest:
        return tag
    client.images.build(
        fileobj=io.BytesIO(context),
        custom_context=True,
        tag=tag,
        labels={TEST_LABEL: "1", HASH_LABEL: digest},
        rm=True,
        forcerm=True,
    )
    # Drop the superseded image, unless a container still uses it.
    if old is not None and old.id:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(old.id)
    return tag


def build_haproxy_image(client: DockerClient) -> str:
    """Build ``cosmos-test/haproxy:latest`` from the host's HAProxy; return the tag.

    The image runs ``haproxy -W -db -f /usr/local/etc/haproxy/haproxy.cfg``
    (master-worker, PID 1), so a reload is :func:`reload_haproxy`.
    """
    binaries = [_HOST_HAPROXY, *_host_libraries(_HOST_HAPROXY), _HOST_BUSYBOX]
    entries: dict[str, tuple[Source, int]] = {
        str(path): (path, path.stat().st_mode & 0o777) for path in binaries
    }
    entries |= {
        "/etc/passwd": (_PASSWD, 0o644),
        "/etc/group": (_GROUP, 0o644),
        HAPROXY_CFG: (HAPROXY_STARTER_CFG, 0o644),
        "/var/run": (None, 0o755),
        "/var/lib/haproxy": (None, 0o755),
        "/tmp": (None, 0o1777),
    }
    dockerfile = f"""\
FROM scratch
COPY rootfs/ /
{_BUSYBOX_INSTALL}
CMD ["haproxy", "-W", "-db", "-f", "{HAPROXY_CFG}"]
"""
    return _build(client, HAPROXY_IMAGE, _build_context(dockerfile, entries))


def build_backend_image(client: DockerClient) -> str:
    """Build ``cosmos-test/httpd:latest`` (busybox httpd on :8080); return the tag.

    ``/`` answers the container's hostname; ``/cgi-bin/sticky`` answers it too
    and sets ``SRV=<hostname>-sess``. Pass ``hostname=`` to name a container.
    """
    entries: dict[str, tuple[Source, int]] = {
        str(_HOST_BUSYBOX): (_HOST_BUSYBOX, 0o755),
        "/entrypoint.sh": (_BACKEND_ENTRYPOINT, 0o755),
        "/tmp": (None, 0o1777),
    }
    dockerfile = f"""\
FROM scratch
COPY rootfs/ /
{_BUSYBOX_INSTALL}
EXPOSE {BACKEND_PORT}
CMD ["/entrypoint.sh"]
"""
    return _build(client, BACKEND_IMAGE, _build_context(dockerfile, entries))


# ----------------------------------------------------------------------- containers


def run_test_container(client: DockerClient, image: str, **kwargs: Any) -> Container:
    """Start a detached container labelled ``cosmos-test=1``; see ``containers.run``."""
    labels = {**kwargs.pop("labels", {}), **TEST_LABELS}
    return client.containers.run(image, detach=True, labels=labels, **kwargs)


def remove_test_containers(client: DockerClient) -> int:
    """Force-remove this test session's containers (see :data:`SESSION_ID`); return how many."""
    containers = client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={SESSION_ID}"})
    for container in containers:
        remove_container(container)
    return len(containers)


def remove_container(container: Container) -> None:
    """Force-remove *container* and its anonymous volumes; a missing one is fine."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True, v=True)


def container_ip(container: Container) -> str:
    """Return the container's IP address (172.17.x.y on the default bridge)."""
    container.reload()
    settings = container.attrs["NetworkSettings"]
    addresses = [settings.get("IPAddress")] + [
        net.get("IPAddress") for net in (settings.get("Networks") or {}).values()
    ]
    for address in addresses:
        if address:
            return str(address)
    raise RuntimeError(
        f"container {container.short_id} has no IP address (status {container.status})"
    )


def wait_for_log(
    container: Container, text: str, count: int = 1, timeout: float = 10.0
) -> str:
    """Wait until *text* occurs *count* times in the container logs; return the logs."""
    deadline = time.monotonic() + timeout
    while True:
        logs = container.logs().decode(errors="replace")
        if logs.count(text) >= count:
            return logs
        if time.monotonic() >= deadline:
            seen = f"{logs.count(text)}/{count}"
            raise TimeoutError(
                f"{text!r} seen {seen} times in {timeout}s; logs:\n{logs}"
            )
        time.sleep(0.05)


def reload_haproxy(container: Container) -> str:
    """Check the config, then send USR2 to the HAProxy master (PID 1); return output.

    Raises ``RuntimeError`` with HAProxy's message when the config is invalid.
    Wait for the reload with ``wait_for_log(container, "Loading success", count=n)``.
    """
    command = f"haproxy -c -f {HAPROXY_CFG} && kill -USR2 1"
    result = container.exec_run(["sh", "-c", command])
    output = cast(bytes, result.output).decode(errors="replace")
    if result.exit_code != 0:
        raise RuntimeError(f"haproxy reload failed ({result.exit_code}):\n{output}")
    return output


# ----------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class HttpResponse:
    """A fully read HTTP response."""

    status: int
    headers: Message
    body: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Return 3xx responses as they are instead of following them."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxies (containers are reached directly) and no redirect following.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http_get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> HttpResponse:
    """GET *url* once; any status (including 4xx/5xx/3xx) is returned, not raised."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return HttpResponse(
                response.status, response.headers, response.read().decode()
            )
    except urllib.error.HTTPError as error:
        with error:
            return HttpResponse(error.code, error.headers, error.read().decode())


def wait_http(
    url: str,
    timeout: float = 10.0,
    expect_status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """Poll *url* until it answers *expect_status*; return that response.

    Connection errors and other statuses are retried until *timeout* seconds
    have passed, then ``TimeoutError`` names the last problem seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = http_get(url, headers, timeout=min(2.0, timeout))
            if response.status == expect_status:
                return response
            problem = f"status {response.status}"
        except (OSError, http.client.HTTPException) as error:
            problem = repr(error)
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"GET {url}: no {expect_status} within {timeout}s (last: {problem})"
            )
        time.sleep(0.05)
