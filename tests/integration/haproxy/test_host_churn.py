"""The host reloader's runtime path against a real HAProxy 2.6 on this host (master-worker, -W -S):
churn in an existing service costs no reload, a new backend still reloads, the file on disk keeps the truth."""

from __future__ import annotations

from collections.abc import Callable

from cosmos_core.builtin.host_reloader import HostReloader
from cosmos_core.bundle import Bundle
from cosmos_core.haproxy.runtime_api import RuntimeAPI, RuntimeAPIError, UnixSocket, show_proc
from tests.integration.haproxy.conftest import Proxy, wait_for
from tests.integration.haproxy.test_runtime_api import get


def config(proxy: Proxy, servers: dict[str, int], extra: str = "") -> str:
    lines = [
        "global", f"    stats socket {proxy.admin} level admin",
        "defaults", "    mode http", "    timeout connect 2s", "    timeout client 10s", "    timeout server 10s",
        "frontend web", f"    bind 127.0.0.1:{proxy.port}", "    default_backend app",
        "backend app", "    balance roundrobin", "    cookie SRV insert indirect nocache dynamic", "    dynamic-cookie-key app",
        *(f"    server {name} 127.0.0.1:{port} check" for name, port in servers.items()),
        *(f"    server cosmos-spare-{i} 0.0.0.0:1 disabled check" for i in (1, 2)),
    ]
    return "\n".join(lines) + "\n" + extra


def reloads(proxy: Proxy) -> int:
    """The master's reload count (``show proc``)."""
    api = RuntimeAPI(UnixSocket(str(proxy.master)), master=True)
    seen: list[int] = []

    def ask() -> bool:
        try:
            seen.append(next(p.reloads for p in show_proc(api) if p.kind == "master"))
            return True
        except RuntimeAPIError:
            return False  # the master re-executes itself on a reload

    wait_for(ask, what="show proc")
    return seen[-1]


def bodies(proxy: Proxy, times: int = 8) -> set[str]:
    return {get(proxy.port)[1] for _ in range(times)}


def test_churn_in_an_existing_backend_goes_through_the_runtime_api_with_no_reload(
    start_haproxy: Callable[[str], Proxy], http_backends: Callable[[str], int], haproxy_bin: str
) -> None:
    one, two, three = http_backends("one"), http_backends("two"), http_backends("three")
    proxy = start_haproxy("")
    reloader = HostReloader(str(proxy.config), haproxy_bin, None, str(proxy.master), runtime_api=str(proxy.admin))
    first = Bundle.of(config(proxy, {"one": one}))
    assert reloader.apply(first, None).reloaded
    wait_for(lambda: _served(proxy) == {"one"}, what="one routed")
    before = reloads(proxy)

    joined = reloader.apply(Bundle.of(config(proxy, {"one": one, "two": two})), first)
    assert not joined.reloaded and "runtime API" in joined.reason
    assert bodies(proxy) == {"one", "two"}
    replaced = reloader.apply(Bundle.of(config(proxy, {"two": two})), None)
    assert not replaced.reloaded
    assert bodies(proxy) == {"two"}
    assert reloads(proxy) == before  # no reload for any of it
    assert proxy.config.read_text() == config(proxy, {"two": two})  # the file on disk holds the truth

    structural = Bundle.of(config(proxy, {"two": two, "three": three}, extra="backend other\n    mode http\n"))
    assert reloader.apply(structural, None).reloaded
    wait_for(lambda: reloads(proxy) == before + 1, what="the reload")
    wait_for(lambda: _served(proxy) == {"two", "three"}, what="the reloaded config")


def _served(proxy: Proxy) -> set[str]:
    try:
        return bodies(proxy)
    except OSError:
        return set()
