"""Extra Docker Engines for fleet tests: each with its own bridge, data root, exec root, socket and pidfile.

Names and subnets are unique to the test process (pid + random), so parallel
runs never collide; :meth:`Engine.close` removes the engine's containers, stops
it, unmounts and deletes its directory and deletes its bridge.  No registry is
reachable, so images are copied from the main engine with ``docker save | docker load``.

Also :class:`TcpProxy`: a loopback TCP forwarder that a test stops (refusing
and cutting every connection, like a partition) and starts again on the same port.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.net import free_port, stop_process

if TYPE_CHECKING:
    from docker import DockerClient


def engines_available() -> str | None:
    """Why extra engines cannot run here (``None``: they can)."""
    if os.geteuid() != 0:
        return "extra dockerd engines need root"
    for tool in ("dockerd", "docker", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


def _used_subnets() -> set[str]:
    out = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line and line[0].isdigit()}


def start_dockerd(root: Path, host: str, bridge: str, *extra: str, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """Start a dockerd with its own socket (``host``), data root, exec root and pidfile under
    ``root`` on ``bridge``, logging to ``root/dockerd.log``; return once it answers a ping."""
    import docker

    root.mkdir(parents=True, exist_ok=True)
    log = (root / "dockerd.log").open("ab")
    proc = subprocess.Popen(
        [
            "dockerd", "--host", host, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "docker.pid"), "--bridge", bridge, "--iptables=false", "--ip-masq=false", *extra,
        ],
        stdout=log, stderr=log, start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = docker.DockerClient(base_url=host)
            client.ping()
            client.close()
            return proc
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd at {host} did not start; see {root}/dockerd.log") from None
            time.sleep(0.2)


@dataclass
class Engine:
    """One private dockerd."""

    name: str
    bridge: str
    subnet: str  # the bridge address with prefix, e.g. 10.231.7.1/24
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    images: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    @property
    def gateway(self) -> str:
        return self.subnet.split("/")[0]

    def start(self, timeout: float = 60.0) -> Engine:
        for argv in (
            ["ip", "link", "add", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", self.subnet, "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
        ):
            subprocess.run(argv, check=True, capture_output=True)
        self.proc = start_dockerd(self.root, self.host, self.bridge, timeout=timeout)
        return self

    def client(self) -> DockerClient:
        import docker

        return docker.DockerClient(base_url=self.host)

    def load_image(self, source_host: str | None, tag: str) -> None:
        """Copy ``tag`` from the engine at ``source_host`` (``None``: the default engine)."""
        save_env = dict(os.environ)
        if source_host:
            save_env["DOCKER_HOST"] = source_host
        else:
            save_env.pop("DOCKER_HOST", None)
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE, env=save_env)
        load = subprocess.run(["docker", "-H", self.host, "load"], stdin=save.stdout, capture_output=True, check=False)
        assert save.stdout is not None
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"docker save {tag} | docker -H {self.host} load failed: {load.stderr.decode()}")
        self.images.append(tag)

    def close(self) -> None:
        """Remove containers, stop dockerd, unmount and delete its directory, delete the bridge."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                client = self.client()
                for container in client.containers.list(all=True):
                    with contextlib.suppress(Exception):
                        container.remove(force=True, v=True)
                client.close()
            stop_process(self.proc, timeout=30)
        for mount in (self.root / "data", self.root / "exec"):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def make_engines(count: int, images: list[str]) -> list[Engine]:
    """Start ``count`` engines (unique names, bridges, subnets) with ``images`` copied in.

    On any failure the engines already started are closed before the error propagates.
    """
    tag = f"{os.getpid() % 10000}{random.randrange(100):02d}"
    used = _used_subnets()
    engines: list[Engine] = []
    try:
        for index in range(count):
            while True:
                net = f"10.{random.randrange(200, 250)}.{random.randrange(1, 250)}"
                if f"{net}.0/24" not in used:
                    used.add(f"{net}.0/24")
                    break
            root = Path(tempfile.mkdtemp(prefix=f"cosmos-fleet-{tag}-{index}-", dir="/tmp"))
            engine = Engine(f"fleet{tag}{index}", f"cfl{tag}{index}"[:15], f"{net}.1/24", root)
            engines.append(engine)
            engine.start()
            for image in images:
                engine.load_image(None, image)
    except BaseException:
        for engine in engines:
            engine.close()
        raise
    return engines


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; :meth:`stop` refuses and cuts connections, :meth:`start` resumes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns |= {client, upstream}
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            with self._lock:
                self._conns.discard(source)
            with contextlib.suppress(OSError):
                source.close()
