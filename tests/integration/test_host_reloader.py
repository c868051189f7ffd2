"""The ``host`` reloader with the host's real haproxy: validate the staged bundle, install it as a unit, reload."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cosmos_core.builtin.host_reloader import HostReloader, make_host
from cosmos_core.bundle import Bundle
from cosmos_core.errors import ReloadError, ValidationError
from cosmos_core.settings import Settings
from tests.support.net import free_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(
    not os.path.exists(HAPROXY) and os.environ.get("CI") != "true", reason="haproxy not installed on the host"
)


def config(port: int, body: str = "") -> str:
    return (
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n"
        f"frontend f\n    bind 127.0.0.1:{port}\n"
        f'    http-request return status 200 content-type text/plain string "{body or "v"}"\n'
    )


def test_valid_config_is_written_and_the_command_runs(tmp_path: Path) -> None:
    live, marker = tmp_path / "etc" / "haproxy.cfg", tmp_path / "reloads"
    reloader = HostReloader(str(live), HAPROXY, f"sh -c 'echo x >> {marker}'", None)

    first = reloader.apply(Bundle.of(config(18081)), None)
    again = reloader.apply(Bundle.of(config(18081)), None)

    assert first.reloaded and not again.reloaded and again.reason == "config unchanged"
    assert live.read_text() == config(18081)
    assert marker.read_text() == "x\n"
    assert sorted(p.name for p in live.parent.iterdir()) == ["haproxy.cfg"]  # no temporary left


def test_refused_config_keeps_the_previous_file(tmp_path: Path) -> None:
    live, marker = tmp_path / "haproxy.cfg", tmp_path / "reloads"
    live.write_text(config(18082))
    reloader = HostReloader(str(live), HAPROXY, f"touch {marker}", None)

    with pytest.raises(ReloadError, match="no-such-keyword"):
        reloader.apply(Bundle.of(config(18082) + "    no-such-keyword\n"), None)

    assert live.read_text() == config(18082)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["haproxy.cfg"]


def test_failing_reload_command_is_a_reload_error(tmp_path: Path) -> None:
    reloader = HostReloader(str(tmp_path / "haproxy.cfg"), HAPROXY, "false", None)
    with pytest.raises(ReloadError, match="reload command failed"):
        reloader.apply(Bundle.of(config(18083)), None)


def test_refused_config_is_not_retryable_but_a_failed_reload_is(tmp_path: Path) -> None:
    reloader = HostReloader(str(tmp_path / "haproxy.cfg"), HAPROXY, "false", None)
    with pytest.raises(ReloadError) as refused:
        reloader.apply(Bundle.of(config(18084) + "    no-such-keyword\n"), None)
    with pytest.raises(ReloadError) as failed:
        reloader.apply(Bundle.of(config(18084)), None)
    assert not refused.value.retryable and failed.value.retryable


def test_a_failed_reload_is_done_again_although_the_file_is_installed(tmp_path: Path) -> None:
    live, flag, marker = tmp_path / "haproxy.cfg", tmp_path / "ok", tmp_path / "reloads"
    command = f"sh -c 'test -f {flag} || {{ touch {flag}; exit 1; }}; echo x >> {marker}'"
    reloader = HostReloader(str(live), HAPROXY, command, None)

    with pytest.raises(ReloadError):
        reloader.apply(Bundle.of(config(18085)), None)  # installed, but the reload command failed
    assert live.read_text() == config(18085)

    assert reloader.apply(Bundle.of(config(18085)), None).reloaded  # not "unchanged": HAProxy never loaded it
    assert marker.read_text() == "x\n"
    assert reloader.apply(Bundle.of(config(18085)), None).reason == "config unchanged"


def test_a_reload_path_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        make_host(Settings(reloader="host", options={"haproxy_config": str(tmp_path / "h.cfg")}))
    assert info.value.field == "reload_command"


@pytest.fixture
def master(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """A host HAProxy in master-worker mode with a master CLI socket (127.0.0.1 only)."""
    live, sock, port = tmp_path / "haproxy.cfg", tmp_path / "master.sock", free_port()
    live.write_text(config(port, "one"))
    proc = subprocess.Popen(
        [HAPROXY, "-W", "-db", "-S", str(sock), "-f", str(live)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield live, sock, port
    finally:
        proc.terminate()
        proc.wait(10)


def get(port: int) -> str:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/", timeout=2) as response:
        return response.read().decode()


def wait_body(port: int, body: str, timeout: float = 10.0) -> str:
    deadline, seen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            seen = get(port)
            if seen == body:
                return seen
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"expected {body!r}, last saw {seen!r}")


def test_reload_through_the_master_socket(master: tuple[Path, Path, int]) -> None:
    live, sock, port = master
    wait_body(port, "one")
    reloader = make_host(Settings(reloader="host", options={"haproxy_config": str(live), "haproxy_bin": HAPROXY,
                                                      "master_socket": str(sock)}))

    assert reloader.apply(Bundle.of(config(port, "two")), None).reloaded

    assert wait_body(port, "two") == "two"
