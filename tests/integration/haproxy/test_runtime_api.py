"""The runtime API client against a real HAProxy 2.6 (stats socket, TCP socket, master CLI)."""

from __future__ import annotations

import http.client
from collections.abc import Callable

import pytest

from cosmos_core.haproxy.runtime_api import (
    RuntimeAPI,
    RuntimeAPIError,
    TcpSocket,
    UnixSocket,
    parse_proc,
)
from tests.integration.haproxy.conftest import Proxy, wait_for

BACKEND = """
frontend web
    bind 127.0.0.1:{port}
    http-request set-var(txn.tag) req.hdr(host),map({dir}/tags.map,none)
    http-response set-header X-Tag %[var(txn.tag)]
    default_backend app

backend app
    balance roundrobin
    cookie SRV insert indirect nocache dynamic
    dynamic-cookie-key s3cret
    server s1 127.0.0.1:%(one)d
    server s2 0.0.0.0:0 disabled
"""


def get(port: int, cookie: str | None = None, host: str = "app.test") -> tuple[int, str, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/", headers={"Host": host, **({"Cookie": cookie} if cookie else {})})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, body, response.getheader("Set-Cookie") or "", response.getheader("X-Tag") or ""


@pytest.fixture
def proxy(start_haproxy: Callable[[str], Proxy], http_backends: Callable[[str], int], tmp_path) -> Proxy:
    (tmp_path / "tags.map").write_text("app.test blue\n")
    one = http_backends("one")
    return start_haproxy(BACKEND.replace("%(one)d", str(one)))


def test_a_batch_is_one_connection_with_one_answer_per_command(proxy: Proxy, http_backends) -> None:
    two = http_backends("two")
    api = RuntimeAPI(UnixSocket(str(proxy.admin)))

    answers = api.execute([f"set server app/s2 addr 127.0.0.1 port {two}", "set server app/s2 state ready",
                           "set server app/nosuch state ready", "show servers state app"])

    assert [a.ok for a in answers] == [True, True, False, True]
    assert answers[0].text.startswith("IP changed from '0.0.0.0' to '127.0.0.1'")
    assert answers[2].text == "No such server."
    assert "s2 127.0.0.1" in answers[3].text
    bodies = {get(proxy.port)[1] for _ in range(6)}
    assert bodies == {"one", "two"}  # the filled slot takes traffic without a reload


def test_check_names_the_refused_command_and_servers_state_parses(proxy: Proxy) -> None:
    api = RuntimeAPI(UnixSocket(str(proxy.admin)))
    with pytest.raises(RuntimeAPIError) as info:
        api.check(["set server app/s1 state drain", "set server app/s9 state ready"])
    assert info.value.command == "set server app/s9 state ready" and not info.value.retryable

    state = api.servers_state("app")["app"]

    assert state["s1"].drain and not state["s1"].maint and state["s1"].address == "127.0.0.1"
    assert state["s2"].maint and state["s2"].address == "0.0.0.0"
    assert set(api.servers_state()) >= {"app"}


def test_dynamic_cookies_follow_the_address_so_a_cookie_means_one_container(proxy: Proxy, http_backends) -> None:
    two = http_backends("two")
    api = RuntimeAPI(TcpSocket("127.0.0.1", proxy.tcp_port))
    api.check([f"set server app/s2 addr 127.0.0.1 port {two}", "set server app/s2 state ready"])
    cookies = {}
    for _ in range(6):
        status, body, set_cookie, _ = get(proxy.port)
        cookies[body] = set_cookie.split(";")[0]
    assert set(cookies) == {"one", "two"} and cookies["one"] != cookies["two"]
    assert {get(proxy.port, cookies["two"])[1] for _ in range(5)} == {"two"}  # sticky to the runtime-filled slot

    # The same container (address) in the other slot after a "reload" keeps its cookie: swap the slots.
    one_port = int(api.servers_state("app")["app"]["s1"].port)
    api.check([f"set server app/s1 addr 127.0.0.1 port {two}", f"set server app/s2 addr 127.0.0.1 port {one_port}"])
    assert {get(proxy.port, cookies["two"])[1] for _ in range(5)} == {"two"}
    assert {get(proxy.port, cookies["one"])[1] for _ in range(5)} == {"one"}


def test_maps_change_at_run_time(proxy: Proxy) -> None:
    api = RuntimeAPI(UnixSocket(str(proxy.admin)))
    path = f"{proxy.dir}/tags.map"
    assert api.show_map(path) == {"app.test": "blue"}

    api.check([f"set map {path} app.test green", f"add map {path} other.test red"])

    assert api.show_map(path) == {"app.test": "green", "other.test": "red"}
    assert get(proxy.port)[3] == "green"


def test_master_cli_reaches_the_worker_and_counts_processes(proxy: Proxy) -> None:
    api = RuntimeAPI(UnixSocket(str(proxy.master)), master=True)
    seen: list = []

    def answers(query: Callable[[], object]) -> Callable[[], bool]:
        def attempt() -> bool:
            try:  # the master re-executes itself on a reload (and is slow on a loaded machine): it may reset
                seen.append(query())
                return True
            except RuntimeAPIError:
                return False
        return attempt

    wait_for(answers(lambda: api.execute(["show servers state app"])[0]), what="the worker through the master")
    assert seen[-1].ok
    wait_for(answers(lambda: parse_proc(api.master(["show proc"])[0].text)), what="show proc")
    assert [p.kind for p in seen[-1]] == ["master", "worker"]

    def reloaded() -> bool:
        if not answers(lambda: parse_proc(api.master(["show proc"])[0].text))():
            return False
        procs = seen[-1]
        master_reloaded = any(p.kind == "master" and p.reloads >= 1 for p in procs)
        return master_reloaded and any(p.kind == "worker" and p.reloads == 0 for p in procs)  # the new worker is up

    proxy.reload()
    wait_for(reloaded, what="a reload")
    workers = [p for p in seen[-1] if p.kind == "worker"]
    assert workers and min(p.reloads for p in workers) == 0  # the new worker is generation 0; old ones count up


def test_an_unreachable_socket_is_a_retryable_error(tmp_path) -> None:
    with pytest.raises(RuntimeAPIError) as info:
        RuntimeAPI(UnixSocket(str(tmp_path / "nothing.sock"))).execute(["show info"])
    assert info.value.retryable and "nothing.sock" in str(info.value)


def test_a_command_with_a_separator_or_line_break_is_refused(proxy: Proxy) -> None:
    api = RuntimeAPI(UnixSocket(str(proxy.admin)))
    for bad in ("set server app/s1 state ready;shutdown frontend web", "show info\nshutdown frontend web", ""):
        with pytest.raises(ValueError):
            api.execute([bad])
