"""cosmos_core.testing.pipeline: what the README tells plugin authors to use in their own tests."""

from __future__ import annotations

import types

import pytest
from cosmos_routing_host_path import plugin as host_path

from cosmos_core.contracts import Provides, Setting
from cosmos_core.errors import PluginError, ValidationError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.testing.pipeline import run_payload, runtime_for

TENANT_HEADER = Setting("tenant_header", str, "X-Tenant", "header that names the tenant", section="tenant")


class TenantMode:
    precedence = 15

    def __init__(self, header: str) -> None:
        self.header = header

    def normalize(self, predicate: str) -> str:
        if not predicate.isalnum():
            raise ValueError("must be letters and digits")
        return predicate.lower()

    def criteria(self, predicate: str) -> list[str]:
        return [f"req.hdr({self.header}) -m str {predicate}"]

    def sort_key(self, predicate: str) -> tuple[str]:
        return (predicate,)


def tenant_plugin() -> types.SimpleNamespace:
    @hookimpl
    def cosmos_settings() -> list[Setting]:
        return [TENANT_HEADER]

    @hookimpl
    def cosmos_routing_modes() -> list[Provides]:
        return [Provides("tenant", lambda: TenantMode("X-Tenant"))]

    return types.SimpleNamespace(__name__="tenant", cosmos_settings=cosmos_settings,
                                 cosmos_routing_modes=cosmos_routing_modes)


PAYLOAD = {"candidates": [{"serviceName": "acme", "configMode": "tenant", "predicate": "ACME",
                           "containers": [{"id": "a1", "ip": "10.0.0.1:80"}]}]}


def test_a_payload_runs_through_the_pipeline_with_the_plugin() -> None:
    result = run_payload(PAYLOAD, tenant_plugin())
    assert "    acl acl_acme req.hdr(X-Tenant) -m str acme\n" in result.config
    assert [s.name for s in result.services] == ["acme"] and result.plan.summary()["created"] == 1


def test_options_resolve_like_cosmos_toml_values() -> None:
    runtime = runtime_for(tenant_plugin(), options={"tenant_header": "X-Org"})
    assert runtime.settings.option(TENANT_HEADER) == "X-Org"
    assert runtime_for(tenant_plugin()).settings.option(TENANT_HEADER) == "X-Tenant"
    with pytest.raises(ValidationError, match="options: tenant_header"):
        runtime_for(tenant_plugin(), options={"tenant_header": 3})


def test_bad_input_and_unknown_options_are_refused() -> None:
    with pytest.raises(ValidationError, match="predicate"):
        run_payload({**PAYLOAD, "candidates": [{**PAYLOAD["candidates"][0], "predicate": "a.b"}]}, tenant_plugin())
    with pytest.raises(ValidationError, match="options: nope"):
        run_payload(PAYLOAD, tenant_plugin(), options={"nope": 1})
    with pytest.raises(PluginError):
        broken = types.SimpleNamespace(__name__="broken", cosmos_routing_modes=hookimpl(
            lambda: [Provides("tenant", lambda: types.SimpleNamespace(
                precedence=1, normalize=str, criteria=lambda p: [f"x\n{p}"], sort_key=lambda p: (p,)))]))
        run_payload(PAYLOAD, broken, host_path)
