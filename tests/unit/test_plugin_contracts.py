"""The core checks what plugins return: criteria lines, emitter bundles, reloader outcomes, watch defaults."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest

from cosmos_routing_host_path import plugin as host_path

from cosmos_core.agent import Agent
from cosmos_core.cli.watch import agent_default
from cosmos_core.contracts import Provides
from cosmos_core.errors import PluginError, ValidationError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.pipeline import generate
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from cosmos_core.validate import check_config_line, check_predicate, check_routed_predicate


class Mode:
    precedence = 10

    def __init__(self, lines: Any) -> None:
        self.lines = lines

    def normalize(self, predicate: str) -> str:
        return predicate

    def criteria(self, predicate: str) -> Any:
        return self.lines

    def sort_key(self, predicate: str) -> tuple[str]:
        return (predicate,)


def runtime_with_mode(lines: Any, tmp_path, **settings: Any) -> Runtime:
    plugin = types.SimpleNamespace(
        __name__="odd_mode",
        cosmos_routing_modes=hookimpl(lambda: [Provides("odd", lambda: Mode(lines))]),
    )
    return Runtime(Settings(store=f"sqlite://{tmp_path}/s.db", **settings), Plugins.from_plugins(plugin))


def snapshot(mode: str = "odd", predicate: str = "x.test") -> Snapshot:
    container = Container("c1", "10.0.0.1", 80)
    return Snapshot("t", (RunningContainer("web", container),), (Service("web", mode, predicate, None, 80, (container,)),))


@pytest.mark.parametrize("lines, reason", [
    (["path /x\n    server evil 6.6.6.6:80"], "one line of printable characters"),
    ([""], "must not be empty"),
    (["-i x"], "must not start with '-'"),
    (["path /x # hidden"], "'#'"),
    ([], "expected a non-empty list of strings"),
    ("path /x", "expected a non-empty list of strings"),
    (None, "expected a non-empty list of strings"),
    ([42], "must be a string"),
])
def test_criteria_the_core_refuses_name_the_mode_and_store_nothing(tmp_path, lines, reason) -> None:
    runtime = runtime_with_mode(lines, tmp_path)
    with pytest.raises(PluginError) as info:
        generate(runtime, snapshot())
    message = str(info.value)
    assert message.startswith("routing mode 'odd' (") and "criteria('x.test')" in message and reason in message
    assert "\n" not in message and info.value.exit_code == 2
    assert runtime.store.load("t").services == {}


def test_good_criteria_are_rendered(tmp_path) -> None:
    runtime = runtime_with_mode(["req.hdr(x-tenant),lower -m str acme"], tmp_path)
    assert "    acl acl_web req.hdr(x-tenant),lower -m str acme\n" in generate(runtime, snapshot()).config


def test_the_core_predicate_check_accepts_a_comma_separated_host_list() -> None:
    # Issue 10: a host-mode predicate lists hosts with commas (as nginx-proxy's VIRTUAL_HOST).
    from cosmos_core.validate import check_predicate

    assert check_predicate("example.com,www.example.com,*.example.com") == "example.com,www.example.com,*.example.com"


@pytest.mark.parametrize("predicate", ["X-Tenant),map(/etc/passwd=acme", "a b",
                                       "a\nb", "a#b", "${X}", "a'b", 'a"b', "a\\b", "(x)", "[x]", "a|b", "é"])
def test_the_core_predicate_check_refuses_expression_syntax(predicate) -> None:
    with pytest.raises(ValidationError):
        check_predicate(predicate)


@pytest.mark.parametrize("predicate", ["X-Tenant=-i", "-i"])
def test_a_normalised_predicate_may_not_be_a_flag(predicate, tmp_path) -> None:
    assert check_predicate(predicate) == predicate  # a raw "-a" may still become the path "/-a"
    with pytest.raises(ValidationError):
        check_routed_predicate(predicate)
    runtime = runtime_with_mode(["path /x"], tmp_path)  # a mode that keeps the predicate as it is
    with pytest.raises(ValidationError) as info:
        generate(runtime, snapshot("odd", predicate))
    assert info.value.field == "candidates[0].predicate"
    assert runtime.store.load("t").services == {}


@pytest.mark.parametrize("predicate", ["first.example.com", "/api/v2", "X-Tenant=acme", "a:8080", "/a-b_c~d%20"])
def test_the_core_predicate_check_accepts_plain_tokens(predicate) -> None:
    assert check_predicate(predicate) == predicate


def test_check_config_line_accepts_haproxy_expressions() -> None:
    assert check_config_line("req.hdr(host),field(1,:) -m str -i a.test") == "req.hdr(host),field(1,:) -m str -i a.test"


def test_an_emitter_returning_the_wrong_type_is_one_line_naming_it(tmp_path) -> None:
    plugin = types.SimpleNamespace(
        __name__="bad_emitter",
        cosmos_emitters=hookimpl(lambda: [Provides("bad", lambda settings: types.SimpleNamespace(
            render=lambda services, routes: 42))]),
    )
    runtime = Runtime(Settings(store=f"sqlite://{tmp_path}/s.db", emitter="bad"), Plugins.from_plugins(plugin, host_path))
    with pytest.raises(PluginError, match=r"^emitter 'bad' \(.*\): render\(\) returned 42, expected a Bundle$"):
        generate(runtime, snapshot("host", "web.test"))


def test_an_emitter_returning_text_still_works(tmp_path) -> None:
    plugin = types.SimpleNamespace(
        __name__="text_emitter",
        cosmos_emitters=hookimpl(lambda: [Provides("text", lambda settings: types.SimpleNamespace(
            render=lambda services, routes: "global\n"))]),
    )
    runtime = Runtime(Settings(store=f"sqlite://{tmp_path}/s.db", emitter="text"), Plugins.from_plugins(plugin, host_path))
    assert generate(runtime, snapshot("host", "web.test")).bundle.files == {"haproxy.cfg": b"global\n"}


class OneSource:
    def __init__(self, items: list[Snapshot] | None = None, error: Exception | None = None) -> None:
        self.items, self.error = items or [], error

    def snapshots(self) -> Iterator[Snapshot]:
        yield from self.items
        if self.error:
            raise self.error

    def close(self) -> None:
        pass


def test_a_reloader_returning_none_is_one_line_naming_it(tmp_path) -> None:
    runtime = Runtime(Settings(store=f"sqlite://{tmp_path}/s.db", reloader="lazy"))
    reloader = types.SimpleNamespace(apply=lambda bundle, previous: None)
    stats = Agent(runtime, OneSource([snapshot("host", "web.test")]), reloader).run(once=True)
    assert stats.failures == 1 and stats.last_exit_code == 2
    assert stats.last_error is not None and stats.last_error.startswith("reloader 'lazy' (")
    assert "apply() returned NoneType, expected ReloadOutcome" in stats.last_error


def test_a_legacy_text_reloader_is_adapted(tmp_path) -> None:
    from cosmos_core.contracts import ReloadOutcome

    seen: list[str] = []
    legacy = types.SimpleNamespace(reload=lambda config: seen.append(config) or ReloadOutcome(True))
    plugin = types.SimpleNamespace(
        __name__="legacy", cosmos_reloaders=hookimpl(lambda: [Provides("legacy", lambda settings: legacy)]))
    runtime = Runtime(Settings(store=f"sqlite://{tmp_path}/s.db", reloader="legacy"), Plugins.from_plugins(plugin, host_path))
    stats = Agent(runtime, OneSource([snapshot("host", "web.test")]), runtime.reloader).run(once=True)
    assert stats.reloads == 1 and "backend be_web" in seen[0]


def test_a_bug_in_a_source_is_an_error_not_an_outage(tmp_path, capsys) -> None:
    from cosmos_core import logs

    logs.configure("json", "info")
    runtime = Runtime(Settings(store=f"sqlite://{tmp_path}/s.db"))
    agent = Agent(runtime, OneSource(error=KeyError("oops")), types.SimpleNamespace())
    stats = agent.run()
    assert stats.source_failed and stats.last_exit_code == 1 and "KeyError" in (stats.last_error or "")
    assert '"level": "error"' in capsys.readouterr().err


def test_watch_defaults_to_docker_when_installed_and_says_what_to_install_otherwise() -> None:
    assert agent_default(Plugins.discover(), "event_sources", None, "events") == "docker"
    assert agent_default(Plugins.discover(), "reloaders", None, "reloader") == "docker-exec"
    assert agent_default(Plugins.from_plugins(), "reloaders", "host", "reloader") == "host"
    with pytest.raises(ValidationError) as info:
        agent_default(Plugins.from_plugins(), "event_sources", None, "events")
    assert info.value.field == "events" and "pip install cosmos-events-docker" in info.value.reason
