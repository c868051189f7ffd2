"""Prove the integration infrastructure: images, containers, HAProxy, dynalite."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.dynalite import Dynalite
from tests.support.images import (
    BACKEND_PORT,
    HAPROXY_CFG_DIR,
    container_ip,
    http_get,
    reload_haproxy,
    wait_for_log,
    wait_http,
)

if TYPE_CHECKING:
    from docker.models.containers import Container

StartContainer = Callable[..., "Container"]


def routing_config(routes: Mapping[str, str]) -> str:
    """An HAProxy config sending each Host header in *routes* to the IP it maps to."""
    frontend, backends = [], []
    for index, (host, ip) in enumerate(sorted(routes.items())):
        frontend += [
            f"    acl host_{index} hdr(host) -i {host}",
            f"    use_backend be_{index} if host_{index}",
        ]
        backends += [
            f"backend be_{index}",
            f"    server s{index} {ip}:{BACKEND_PORT}",
            "",
        ]
    return "\n".join(
        [
            "global",
            "    user haproxy",
            "    group haproxy",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 10s",
            "    timeout server 10s",
            "frontend http",
            "    bind :80",
            *frontend,
            "",
            *backends,
        ]
    )


def start_backend(start_container: StartContainer, image: str, hostname: str) -> str:
    """Start a backend named *hostname*, wait until it serves, and return its IP."""
    ip = container_ip(start_container(image, hostname=hostname))
    wait_http(f"http://{ip}:{BACKEND_PORT}/")
    return ip


def test_backend_serves_hostname_and_sticky_cookie(
    start_container: StartContainer, backend_image: str
) -> None:
    ip = container_ip(start_container(backend_image, hostname="web-1"))

    assert wait_http(f"http://{ip}:{BACKEND_PORT}/").body == "web-1\n"
    sticky = http_get(f"http://{ip}:{BACKEND_PORT}/cgi-bin/sticky")
    assert sticky.status == 200
    assert sticky.headers.get_all("Set-Cookie") == ["SRV=web-1-sess"]
    assert sticky.body == "web-1\n"


def test_haproxy_container_starts_and_reloads(
    start_container: StartContainer, haproxy_image: str
) -> None:
    container = start_container(haproxy_image)
    url = f"http://{container_ip(container)}/"
    wait_for_log(container, "Loading success")
    assert wait_http(url).body == "cosmos-test haproxy"

    assert "Configuration file is valid" in reload_haproxy(container)

    logs = wait_for_log(container, "Loading success", count=2)
    assert logs.count("New worker") == 2
    assert http_get(url).body == "cosmos-test haproxy"


def test_haproxy_routes_by_host_and_follows_reloads(
    start_container: StartContainer,
    haproxy_image: str,
    backend_image: str,
    haproxy_bin: str,
    tmp_path: Path,
) -> None:
    ip_a = start_backend(start_container, backend_image, "web-a")
    ip_b = start_backend(start_container, backend_image, "web-b")
    config = tmp_path / "haproxy.cfg"
    config.write_text(routing_config({"a.test": ip_a, "b.test": ip_b}))
    subprocess.run([haproxy_bin, "-c", "-q", "-f", str(config)], check=True)

    proxy = start_container(
        haproxy_image, volumes={str(tmp_path): {"bind": HAPROXY_CFG_DIR, "mode": "ro"}}
    )
    url = f"http://{container_ip(proxy)}/"
    assert wait_http(url, headers={"Host": "a.test"}).body == "web-a\n"
    assert http_get(url, headers={"Host": "b.test"}).body == "web-b\n"
    assert http_get(url, headers={"Host": "unknown.test"}).status == 503

    config.write_text(routing_config({"a.test": ip_b, "b.test": ip_a}))
    reload_haproxy(proxy)
    wait_for_log(proxy, "Loading success", count=2)
    assert http_get(url, headers={"Host": "a.test"}).body == "web-b\n"
    assert http_get(url, headers={"Host": "b.test"}).body == "web-a\n"


def test_haproxy_reload_rejects_invalid_config(
    start_container: StartContainer, haproxy_image: str, tmp_path: Path
) -> None:
    (tmp_path / "haproxy.cfg").write_text(
        "frontend broken\n    bind :80\n    no-such-keyword\n"
    )
    proxy = start_container(
        haproxy_image,
        command=["sleep", "60"],
        volumes={str(tmp_path): {"bind": HAPROXY_CFG_DIR, "mode": "ro"}},
    )
    with pytest.raises(RuntimeError, match="no-such-keyword"):
        reload_haproxy(proxy)


def test_dynalite_conditional_put_fails(dynalite: Dynalite) -> None:
    client = dynalite.client()
    client.create_table(
        TableName="infra-conditional",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName="infra-conditional")
    put = dict(
        TableName="infra-conditional",
        Item={"pk": {"S": "svc"}},
        ConditionExpression="attribute_not_exists(pk)",
    )
    client.put_item(**put)

    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(**put)


def test_dynalite_env_configures_plain_boto3(dynalite_env: dict[str, str]) -> None:
    import boto3

    client = boto3.client("dynamodb")

    assert client.meta.endpoint_url == dynalite_env["AWS_ENDPOINT_URL_DYNAMODB"]
    assert isinstance(client.list_tables()["TableNames"], list)
