"""The plugin manager: built-ins, registries, duplicates, unknown names, broken plugins."""

from __future__ import annotations

import importlib.metadata
import inspect
import types

import pytest
from structlog.testing import capture_logs

from cosmos_core import hookspecs
from cosmos_core.contracts import Provides
from cosmos_core.errors import DuplicateNameError, UnknownNameError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.plugins import Plugins, make_manager


def plugin(**hooks):
    """A tiny plugin object whose hooks return the given records."""
    namespace = types.SimpleNamespace()
    for hook_name, records in hooks.items():
        def impl(records=records):
            return records
        impl.__name__ = hook_name
        setattr(namespace, hook_name, hookimpl(impl))
    return namespace


def test_every_family_has_a_documented_spec() -> None:
    for hook_name in hookspecs.FAMILIES.values():
        spec = getattr(hookspecs, hook_name)
        doc = inspect.getdoc(spec)
        assert hook_name.startswith("cosmos_") and doc
        assert "Called" in doc and "Returns" in doc


def test_builtins_register_like_plugins() -> None:
    found = Plugins.from_plugins()
    assert found.names("state_stores") == ["sqlite"]
    assert found.names("emitters") == ["haproxy"]
    assert found.names("event_sources") == ["payload"]
    assert "none" in found.names("reloaders")
    assert {i.source for i in found.describe()} == {"builtin"}


@pytest.mark.parametrize("hook_name, family", [(h, f) for f, h in hookspecs.FAMILIES.items()])
def test_each_hook_collects_records_from_a_plugin(hook_name, family) -> None:
    factory = lambda *a: None  # noqa: E731
    found = Plugins.from_plugins(plugin(**{hook_name: [Provides("Extra", factory)]}))
    assert found.get(family, "extra").factory is factory  # names are case-insensitive
    info = [i for i in found.describe() if i.source == "test"][0]
    assert info.provides == {family: ["extra"]}


def test_unknown_name_lists_what_is_installed() -> None:
    with pytest.raises(UnknownNameError) as info:
        Plugins.from_plugins().get("state_stores", "redis", field="store")
    assert str(info.value) == "store: store scheme 'redis' not recognised; installed: sqlite; is the plugin installed?"
    assert info.value.exit_code == 2


def test_duplicate_names_name_both_plugins() -> None:
    a = plugin(cosmos_emitters=[Provides("haproxy", object)])
    found = Plugins.from_plugins(a)
    with pytest.raises(DuplicateNameError) as info:
        found.registry("emitters")
    assert "cosmos_core.builtin.haproxy_emitter" in str(info.value)
    assert "'haproxy'" in str(info.value)


def test_a_hook_that_raises_is_a_warning_not_a_crash() -> None:
    bad = types.SimpleNamespace()

    @hookimpl
    def cosmos_reloaders():
        raise RuntimeError("boom")

    bad.cosmos_reloaders = cosmos_reloaders
    with capture_logs() as logs:
        found = Plugins.from_plugins(bad)
        assert found.names("reloaders") == Plugins.from_plugins().names("reloaders")
    assert any(e["event"] == "plugin_hook_failed" and "boom" in e["error"] for e in logs)
    assert any("boom" in f.error for f in found.failed)


def test_a_hook_returning_garbage_is_a_warning() -> None:
    found = Plugins.from_plugins(plugin(cosmos_emitters=["not a record"]))
    assert found.names("emitters") == ["haproxy"]
    assert found.failed and "expected Provides" in found.failed[0].error


class FakeEntryPoint:
    def __init__(self, name, target, dist=None):
        self.name, self._target, self.dist, self.value = name, target, dist, f"fake:{name}"

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def test_entry_points_load_and_a_broken_one_only_warns(monkeypatch) -> None:
    good = plugin(cosmos_routing_modes=[Provides("header", object)])
    eps = [FakeEntryPoint("broken", ImportError("No module named 'nope'")), FakeEntryPoint("good", good)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps if group == "cosmos" else [])
    with capture_logs() as logs:
        pm, sources, failed = make_manager()
    found = Plugins(pm, sources, failed)
    assert found.names("routing_modes") == ["header"]
    assert [f.name for f in failed] == ["broken"] and "nope" in failed[0].error
    assert any(e["event"] == "plugin_load_failed" and e["log_level"] == "warning" for e in logs)


def test_loading_plugins_does_not_import_boto3_or_docker() -> None:
    import subprocess
    import sys

    code = ("import sys; from cosmos_core.plugins import Plugins; p = Plugins.discover(); "
            "[p.registry(f) for f in ('state_stores','routing_modes','emitters','reloaders','event_sources')]; "
            "print(sorted(m for m in ('boto3', 'botocore', 'docker', 'uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_misspelled_hook_is_a_load_failure_naming_plugin_and_hook() -> None:
    typo = plugin(cosmos_routing_mode=[Provides("x", object)])
    typo.__name__ = "typo_plugin"
    found = Plugins.from_plugins(typo, plugin(cosmos_routing_modes=[Provides("fine", object)]))
    assert [f.name for f in found.failed] == ["typo_plugin"]
    assert "'typo_plugin'" in found.failed[0].error and "'cosmos_routing_mode'" in found.failed[0].error
    assert found.pm.get_plugin("typo_plugin") is None  # unregistered: nothing it provides is used
    assert found.names("routing_modes") == ["fine"]


def test_every_hook_name_is_known() -> None:
    assert hookspecs.HOOKS == {*hookspecs.FAMILIES.values(), "cosmos_settings"}
    for hook_name in hookspecs.HOOKS:
        assert inspect.getdoc(getattr(hookspecs, hook_name))
