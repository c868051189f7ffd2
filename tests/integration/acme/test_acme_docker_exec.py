"""ACME with the docker-exec reloader, end to end: HAProxy runs in a container that Cosmos reaches
only through ``docker exec``.

``cosmos watch`` (docker events, docker-exec reloader) routes a labelled busybox backend; pebble on
loopback validates HTTP-01 against the HAProxy container's own address, HAProxy answers the challenge
from its map (changed through the runtime API, ``docker exec ... nc``), and the certificate goes in
with ``set/commit ssl cert`` inside the container: no reload.  The served chain verifies against
pebble's root over TLS with SNI.  A later reload installs the bundle's key file with mode 0600, and
removing the service withdraws its certificate from HAProxy, again without a reload.
"""

from __future__ import annotations

import ssl
import time

import pytest

from cosmos_core.haproxy.runtime_api import DockerExec, RuntimeAPI
from tests.integration.agent.conftest import Env, env, make_agent  # noqa: F401 - fixtures
from tests.integration.conftest import unavailable
from tests.support.images import HAPROXY_CFG_DIR, container_ip, wait_for_log
from tests.support.pebble import Pebble, PebbleUnavailable
from tests.support.tls import https_get

HOST = "web.example.test"
CERT = f"certs/{HOST}.pem"


@pytest.fixture
def proxy_and_pebble(env: Env, tmp_path):  # noqa: F811 - the fixture imported above
    """The HAProxy container, and pebble validating HTTP-01 on that container's port 80."""
    proxy = env.haproxy()
    try:
        pebble = Pebble(tmp_path / "pebble", address=container_ip(proxy), http_port=80).start()
    except PebbleUnavailable as error:
        unavailable(str(error))
    yield proxy, pebble
    pebble.stop()


def wait_routed_reload(agent, timeout: float = 30.0) -> int:
    """Wait for the reload that routes the one container; returns how many reloads the agent made so far."""
    deadline = time.monotonic() + timeout
    while not any(e.get("containers") == 1 for e in agent.events("reload")):
        assert time.monotonic() < deadline, "the container was never routed"
        time.sleep(0.05)
    return len(agent.events("reload"))


def wait_https(address: str, root: bytes, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return https_get(443, HOST, address=address, cadata=root)[0]
        except (ssl.SSLError, OSError):
            assert time.monotonic() < deadline, "no verified HTTPS answer in time"
            time.sleep(0.2)


def test_acme_through_docker_exec_issues_answers_installs_and_withdraws_without_reloads(
        env: Env, make_agent, proxy_and_pebble) -> None:  # noqa: F811
    proxy, pebble = proxy_and_pebble
    address = container_ip(proxy)
    agent = make_agent(variables={"COSMOS_ACME_DIRECTORY": pebble.directory, "COSMOS_ACME_EMAIL": "ops@example.test",
                                  "COSMOS_ACME_CA_BUNDLE": pebble.api_ca})
    agent.wait_event("agent_started")
    env.backend("web", service="web", predicate=HOST, port="8080")
    routed = wait_routed_reload(agent)  # the service is routed (HTTPS frontend with an empty crt-list)
    loads = wait_for_log(proxy, "Loading success", count=routed + 1).count("Loading success")

    issued = agent.wait_event("certificate_issued", timeout=90)
    assert issued[0]["host"] == HOST
    root = pebble.root_pem()
    assert wait_https(address, root) == 200  # the chain verifies against pebble's root, with SNI
    status, _, body, _, _ = https_get(443, HOST, address=address, cadata=root)
    assert (status, body) == (200, f"{env.prefix}-web\n")
    # Installed through the runtime API inside the container: no reload since the route's.
    assert len(agent.events("reload")) == routed
    assert proxy.logs().decode().count("Loading success") == loads
    api = RuntimeAPI(DockerExec(proxy, 9999))
    assert CERT in api.ssl_certs() and CERT in api.crt_list("crt-list")
    assert api.show_map("maps/acme-challenges.map") == {}  # the challenge answer is gone after the order
    assert "PRIVATE KEY" not in agent.log_path.read_text()

    # The certificate file is beside the live config in the container already (mode 0600), and the
    # reloader counts it as applied: a pass that changes nothing else does not reload for it.
    mode = proxy.exec_run(["stat", "-c", "%a", f"{HAPROXY_CFG_DIR}/{CERT}"]).output.decode().strip()
    assert mode == "600"
    assert proxy.exec_run(["cat", f"{HAPROXY_CFG_DIR}/crt-list"]).output.decode() == f"{CERT}\n"
    skipped = len(agent.events("reload_skipped"))
    env.backend("bystander")  # no cosmos labels: a Docker event and a pass, no new route
    agent.wait_event("reload_skipped", count=skipped + 1)
    assert len(agent.events("reload")) == routed
    assert proxy.logs().decode().count("Loading success") == loads

    # A second service makes the agent reload: the bundle carries the certificate, key file mode 0600.
    env.backend("other", service="other", predicate="other.example.test", port="8080", https="off")
    agent.wait_event("reload", count=routed + 1)
    wait_for_log(proxy, "Loading success", count=loads + 1)
    mode = proxy.exec_run(["stat", "-c", "%a", f"{HAPROXY_CFG_DIR}/{CERT}"]).output.decode().strip()
    assert mode == "600"
    assert wait_https(address, root) == 200  # served from the bundle's files after the reload

    # The service goes: its certificate leaves HAProxy through the runtime API (the store keeps it).
    env.client.containers.get(f"{env.prefix}-web").stop(timeout=1)
    withdrawn = agent.wait_event("certificate_withdrawn", timeout=30)
    assert withdrawn[0]["host"] == HOST
    assert CERT not in api.ssl_certs()
    with pytest.raises(ssl.SSLError):  # strict SNI: no certificate for the name any more
        https_get(443, HOST, address=address, cadata=root)
    assert agent.stop() == 0
