"""Fault 4: two services claiming one route after normalisation; who keeps it, and nobody silently lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cosmos_core import payload, pipeline
from cosmos_core.agent import Agent
from cosmos_core.cli import app
from cosmos_core.errors import ValidationError
from cosmos_core.model import Container, Service
from cosmos_core.plugins import Plugins
from cosmos_core.route_claims import Claim, assign, claims
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from cosmos_routing_host_path import plugin as routing
from tests.unit.test_agent import ListSource, Recorder, snap


def candidate(name: str, predicate: str, mode: str = "host", ip: str = "10.0.0.1:80") -> dict:
    return {"serviceName": name, "configMode": mode, "predicate": predicate, "containers": [{"id": f"c-{name}", "ip": ip}]}


@pytest.fixture
def runtime(tmp_path: Path):
    rt = Runtime(Settings(store=f"sqlite://{tmp_path}/s.db"), Plugins.from_plugins(routing))
    yield rt
    rt.close()


def test_claims_are_the_normalised_routes() -> None:
    rt = Runtime(Settings(), Plugins.from_plugins(routing))
    assert claims(Service("a", "host", "app.example.com", None, 80), rt.routing) == [Claim("host", "app.example.com/")]
    assert claims(Service("b", "path", "/api", None, 80), rt.routing) == [Claim("path", "/api/")]
    assert claims(Service("c", "path", "/", None, 80), rt.routing) == [Claim("path", "/")]


@pytest.mark.parametrize("first, second", [
    (candidate("blue", "app.example.com"), candidate("green", "APP.example.com.")),
    (candidate("blue", "/api", "path"), candidate("green", "api/", "path")),
])
def test_generate_refuses_the_later_claimant_naming_both_and_the_route(runtime, first, second) -> None:
    with pytest.raises(ValidationError) as caught:
        pipeline.generate(runtime, payload.parse({"candidates": [first, second]}))
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert message.startswith("candidates[1].predicate")
    assert "'blue'" in message and "'green'" in message
    assert runtime.store.load("default").services == {}  # nothing stored


def test_a_stored_service_keeps_its_route_against_a_new_claimant(runtime) -> None:
    pipeline.generate(runtime, payload.parse({"candidates": [candidate("green", "app.example.com")]}))
    with pytest.raises(ValidationError, match="route app.example.com is already claimed by service 'green'; "
                                              "service 'blue' is refused"):
        pipeline.generate(runtime, payload.parse({"running": [{"serviceName": "green", "id": "c-green",
                                                               "ip": "10.0.0.1:80"}],
                                                  "candidates": [candidate("blue", "App.Example.com")]}))
    assert list(runtime.store.load("default").services) == ["green"]


def test_a_service_may_move_to_a_route_another_service_leaves_in_the_same_request(runtime) -> None:
    pipeline.generate(runtime, payload.parse({"candidates": [candidate("blue", "a.example.com")]}))
    result = pipeline.generate(runtime, payload.parse(
        {"candidates": [candidate("blue", "b.example.com"), candidate("green", "a.example.com")]}))
    assert {s.name: s.predicate for s in result.services} == {"blue": "b.example.com", "green": "a.example.com"}


def test_cli_generate_exits_2_with_one_line(tmp_path) -> None:
    data = {"candidates": [candidate("blue", "app.example.com"), candidate("green", "APP.example.com.")]}
    (tmp_path / "p.json").write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["generate", str(tmp_path / "p.json"), "--store", f"sqlite://{tmp_path}/s.db"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'blue'" in lines[0] and "'green'" in lines[0] and "app.example.com" in lines[0]


def test_agent_skips_the_later_claimant_with_a_warning_and_routes_the_rest(runtime, capsys) -> None:
    from cosmos_core import logs

    logs.configure("json", "info")
    source = ListSource([snap(("blue", "app.example.com", "10.0.0.1"), ("green", "APP.example.com.", "10.0.0.2"),
                              ("web", "web.example.com", "10.0.0.3"))], then_block=False)
    recorder = Recorder()
    stats = Agent(runtime, source, recorder).run()
    assert stats.failures == 0 and stats.reloads == 1
    assert "backend be_blue" in recorder.configs[0] and "backend be_web" in recorder.configs[0]
    assert "be_green" not in recorder.configs[0]
    warnings = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "service_skipped" in line]
    assert len(warnings) == 1
    assert warnings[0]["service"] == "green" and warnings[0]["holder"] == "blue"
    assert warnings[0]["route"] == "app.example.com"


def test_stored_services_already_in_conflict_render_the_first_and_warn(runtime, capsys) -> None:
    from cosmos_core import logs

    logs.configure("json", "info")
    services = {n: Service(n, "host", "app.example.com", None, 80, (Container(f"c-{n}", "10.0.0.1"),))
                for n in ("blue", "green")}
    bundle = pipeline.render(runtime, services)
    assert bundle.files["maps/hosts.map"] == b"app.example.com/ be_blue\n"
    assert any("route_conflict" in line and "green" in line for line in capsys.readouterr().err.splitlines())
    assert assign({}, (), services, runtime.routing)[1][0].claimant == "green"


def test_host_plus_path_and_the_host_alone_are_two_routes_but_the_same_pair_is_one(runtime) -> None:
    ok = pipeline.generate(runtime, payload.parse({"candidates": [
        candidate("app", "app.example.com"), {**candidate("appapi", "app.example.com"), "path": "/api/"}]}))
    assert {s.name for s in ok.services} == {"app", "appapi"}
    with pytest.raises(ValidationError, match=r"candidates\[0\]\.predicate: route app.example.com/api is already "
                                              r"claimed by service 'appapi'; service 'other' is refused"):
        pipeline.generate(runtime, payload.parse({
            "running": [{"serviceName": n, "id": f"c-{n}", "ip": "10.0.0.1:80"} for n in ("app", "appapi")],
            "candidates": [{**candidate("other", "APP.example.com."), "path": "api"}]}))


def test_several_hosts_conflict_on_any_one_of_them(runtime) -> None:
    with pytest.raises(ValidationError, match="route www.example.com is already claimed by service 'a'"):
        pipeline.generate(runtime, payload.parse({"candidates": [
            candidate("a", "example.com,www.example.com"), candidate("b", "www.Example.com,*.example.com")]}))


def test_a_wildcard_and_an_exact_host_are_different_routes(runtime) -> None:
    result = pipeline.generate(runtime, payload.parse({"candidates": [
        candidate("a", "*.example.com"), candidate("b", "x.example.com"), candidate("c", "example.com")]}))
    assert len(result.services) == 3


def test_a_path_on_a_path_mode_service_is_refused(runtime) -> None:
    with pytest.raises(ValidationError, match=r"candidates\[0\]\.path: only the host mode takes a path"):
        pipeline.generate(runtime, payload.parse({"candidates": [{**candidate("a", "/x", "path"), "path": "/y"}]}))
