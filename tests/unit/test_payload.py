"""Payload parsing: both dialects, ports, modes, and one-line errors that name the field."""

from __future__ import annotations

import pytest

from cosmos_core import payload
from cosmos_core.errors import ValidationError


def candidate(**overrides):
    base = {"serviceName": "app", "configMode": "host", "predicate": "app.example.com",
            "containers": [{"id": "c1", "ip": "10.0.0.1:80"}]}
    base.update(overrides)
    return base


def error_field(data) -> str:
    with pytest.raises(ValidationError) as info:
        payload.parse(data)
    return info.value.field


def test_2016_dialect() -> None:
    snap = payload.parse({
        "tableName": "astro",
        "runningServices": [{"serviceName": "app", "id": "c1", "ip": "10.0.0.1:80"}],
        "candidateServices": [candidate(cookie="JSESSIONID")],
    })
    assert snap.table == "astro"
    assert snap.running[0].service == "app" and snap.running[0].container.port == 80
    service = snap.candidates[0]
    assert (service.name, service.mode, service.predicate, service.cookie, service.port) == (
        "app", "host", "app.example.com", "JSESSIONID", None)  # the port stays on the container
    assert service.endpoint(service.containers[0]) == "10.0.0.1:80"


def test_later_dialect_with_separate_port() -> None:
    snap = payload.parse({
        "table": "astro",
        "running": [{"serviceName": "app", "id": "c1", "ip": "10.0.0.1", "port": "8080"}],
        "candidates": [{"serviceName": "app", "configMode": "Path", "predicate": "/app", "port": 8080,
                        "containers": [{"id": "c1", "ip": "10.0.0.1"}]}],
    })
    assert snap.table == "astro"
    assert snap.running[0].container.port == 8080
    service = snap.candidates[0]
    assert service.mode == "path" and service.port == 8080 and service.containers[0].port is None
    assert service.endpoint(service.containers[0]) == "10.0.0.1:8080"


@pytest.mark.parametrize("mode, expected", [("HOST", "host"), ("Path", "path"), (None, "host"), ("", "host")])
def test_config_mode_is_case_insensitive_and_defaults_to_host(mode, expected) -> None:
    item = candidate()
    if mode is None:
        del item["configMode"]
    else:
        item["configMode"] = mode
    assert payload.parse({"candidates": [item]}).candidates[0].mode == expected


@pytest.mark.parametrize("cookie", [None, ""])
def test_cookie_is_optional(cookie) -> None:
    assert payload.parse({"candidates": [candidate(cookie=cookie)]}).candidates[0].cookie is None


def test_missing_table_and_lists_are_allowed() -> None:
    snap = payload.parse({})
    assert snap.table is None and snap.running == () and snap.candidates == ()


def test_ipv6_address() -> None:
    snap = payload.parse({"candidates": [candidate(containers=[{"id": "c1", "ip": "[fd00::1]:8080"}])]})
    service = snap.candidates[0]
    assert service.containers[0].host == "fd00::1"
    assert service.endpoint(service.containers[0]) == "[fd00::1]:8080"


def test_2016_candidates_of_one_service_may_use_different_ports() -> None:
    snap = payload.parse({"candidateServices": [candidate(), candidate(containers=[{"id": "c2", "ip": "10.0.0.2:81"}])]})
    service = snap.candidates[0]
    assert [service.endpoint(c) for c in service.containers] == ["10.0.0.1:80", "10.0.0.2:81"]


def test_repeated_candidates_merge_their_containers() -> None:
    snap = payload.parse({"candidates": [candidate(), candidate(containers=[{"id": "c2", "ip": "10.0.0.2:80"}])]})
    assert [c.id for c in snap.candidates[0].containers] == ["c1", "c2"]


@pytest.mark.parametrize("data, field", [
    ([], "payload"),
    ({"tableName": "bad table"}, "tableName"),
    ({"tableName": "a", "table": "b"}, "table"),
    ({"candidateServices": {}}, "candidateServices"),
    ({"candidateServices": ["x"]}, "candidateServices[0]"),
    ({"candidateServices": [candidate(serviceName="app\nbackend evil")]}, "candidateServices[0].serviceName"),
    ({"candidateServices": [candidate(predicate="a.com\n  acl x")]}, "candidateServices[0].predicate"),
    ({"candidateServices": [candidate(predicate="a b")]}, "candidateServices[0].predicate"),
    ({"candidateServices": [candidate(predicate=None)]}, "candidateServices[0].predicate"),
    ({"candidateServices": [candidate(cookie="SID; evil")]}, "candidateServices[0].cookie"),
    ({"candidateServices": [candidate(configMode="h o s t")]}, "candidateServices[0].configMode"),
    ({"candidateServices": [candidate(port=70000)]}, "candidateServices[0].port"),
    ({"candidateServices": [candidate(port=True)]}, "candidateServices[0].port"),
    ({"candidateServices": [candidate(containers=[{"id": "c 1", "ip": "10.0.0.1:80"}])]},
     "candidateServices[0].containers[0].id"),
    ({"candidateServices": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:0"}])]},
     "candidateServices[0].containers[0].ip"),
    ({"candidateServices": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:80\n"}])]},
     "candidateServices[0].containers[0].ip"),
    ({"candidateServices": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:80", "port": 81}])]},
     "candidateServices[0].containers[0].port"),
    ({"candidateServices": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1"}])]},
     "candidateServices[0].containers[0].ip"),
    ({"candidateServices": [candidate(), candidate(predicate="other.example.com")]}, "candidateServices[1]"),
    ({"runningServices": [{"serviceName": "app", "id": "c1"}]}, "runningServices[0].ip"),
    ({"runningServices": [{"serviceName": "app", "id": "c1", "ip": "[::1"}]}, "runningServices[0].ip"),
])
def test_bad_input_names_the_field(data, field) -> None:
    assert error_field(data) == field


def test_error_message_is_one_line_with_field_and_value() -> None:
    with pytest.raises(ValidationError) as info:
        payload.parse({"candidateServices": [candidate(predicate="x\ny")]})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("candidateServices[0].predicate: ") and "'x\\ny'" in message


def test_invalid_json() -> None:
    with pytest.raises(ValidationError) as info:
        payload.loads(b"{not json")
    assert info.value.field == "payload"


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize("depth", [1000, 5000, 100_000])
@pytest.mark.parametrize("template", [
    "{}",                                                          # the payload itself
    '{{"tableName": {}}}',
    '{{"tableName": {0}, "table": {0}}}',                          # the dialect-conflict comparison
    '{{"runningServices": [{{"serviceName": "x", "id": {}, "ip": "10.0.0.1"}}]}}',
    '{{"candidateServices": [{{"serviceName": "x", "predicate": "x.example.com", "cookie": {}}}]}}',
    '{{"unknownField": {}}}',
])
def test_deeply_nested_json_is_bad_input_naming_the_payload(depth: int, template: str) -> None:
    text = template.format(nested(depth))
    with pytest.raises(ValidationError) as info:
        payload.loads(text)
    assert info.value.field == "payload"
    assert "nested too deeply" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("depth", [50, 500, 900, 990])
@pytest.mark.parametrize("template", [
    '{{"tableName": {0}, "table": {0}}}',
    '{{"runningServices": [{{"serviceName": "x", "id": {}, "ip": "10.0.0.1"}}]}}',
    '{{"candidateServices": [{{"serviceName": "x", "predicate": "x.example.com", "cookie": {}}}]}}',
])
def test_nesting_below_the_decoders_limit_is_bad_input_too(depth: int, template: str) -> None:
    """Values that decode but are too deep to show or compare are still one-line ValidationErrors."""
    with pytest.raises(ValidationError) as info:
        payload.loads(template.format(nested(depth)))
    assert "\n" not in str(info.value)


# Issue 10 (fresh-user review): unknown fields are refused, never silently ignored.
@pytest.mark.parametrize("data, field", [
    ({"tableName": "t", "runingServices": []}, "runingServices"),                                     # top level, 2016
    ({"table": "t", "runing": []}, "runing"),                                                         # top level, later
    ({"candidateServices": [candidate(predicat="app.example.com")]}, "candidateServices[0].predicat"),
    ({"candidates": [candidate(configmode="host")]}, "candidates[0].configmode"),                    # case matters
    ({"runningServices": [{"serviceName": "app", "id": "c1", "ip": "10.0.0.1:80", "prot": 81}]},
     "runningServices[0].prot"),
    ({"running": [{"serviceName": "app", "id": "c1", "ip": "10.0.0.1", "port": 80, "weigth": 5}]}, "running[0].weigth"),
    ({"candidates": [candidate(weight=5)]}, "candidates[0].weight"),                                 # a container option
    ({"candidates": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:80", "balance": "first"}])]},
     "candidates[0].containers[0].balance"),                                                         # a service option
])
def test_an_unknown_field_is_refused_naming_its_path_and_value(data, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        payload.parse(data)
    assert info.value.field == field
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{field}: unknown field")
    assert repr(info.value.value) in message


def test_a_candidate_container_may_repeat_its_own_service_name_but_not_another() -> None:
    """A running entry copied into a candidate as-is (the serve concurrency test's client does this)
    is the same container; a ``serviceName`` naming another service is a contradiction, refused."""
    same = payload.parse({"candidates": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:80", "serviceName": "app"}])]})
    plain = payload.parse({"candidates": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:80"}])]})
    assert same.candidates == plain.candidates
    with pytest.raises(ValidationError) as info:
        payload.parse({"candidates": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:80", "serviceName": "web"}])]})
    assert info.value.field == "candidates[0].containers[0].serviceName"
    assert "\n" not in str(info.value) and "'web'" in str(info.value) and "'app'" in str(info.value)


def test_every_known_field_and_declared_option_is_accepted_in_both_dialects() -> None:
    from cosmos_core import options as opts

    service_opts = {"path": "/api", "balance": "leastconn", "hsts": 300}
    container_opts = {"weight": 5}
    assert {spec.payload for spec in opts.SERVICE_OPTIONS.values()} >= set(service_opts)
    assert {spec.payload for spec in opts.CONTAINER_OPTIONS.values()} >= set(container_opts)
    old = payload.parse({
        "tableName": "t", "host": "h1",
        "runningServices": [{"serviceName": "app", "id": "c1", "ip": "10.0.0.1:80", **container_opts}],
        "candidateServices": [candidate(cookie="C", port=80, **service_opts,
                                        containers=[{"id": "c1", "ip": "10.0.0.1:80", **container_opts}])],
    })
    new = payload.parse({
        "table": "t", "host": "h1",
        "running": [{"serviceName": "app", "id": "c1", "address": "10.0.0.1", "port": 80, **container_opts}],
        "candidates": [candidate(cookie="C", port=80, **service_opts,
                                 containers=[{"id": "c1", "address": "10.0.0.1", "port": 80, **container_opts}])],
    })
    assert old.candidates == new.candidates and old.running == new.running
    assert dict(old.candidates[0].options)["path"] == "/api"
    # What dump writes, parse reads back (no field of ours is "unknown").
    assert payload.parse(payload.dump(old)).candidates == old.candidates


def test_the_example_payloads_have_no_unknown_field() -> None:
    """The seed payload (the article's request) and every example still parse."""
    import json
    from pathlib import Path

    examples = sorted((Path(__file__).parents[2] / "examples").glob("*payload*.json"))
    assert examples
    for path in examples:
        assert payload.parse(json.loads(path.read_text())).candidates, path


@pytest.mark.parametrize("text, field", [
    ('{"candidates":[{"serviceName":"web","predicate":"web.test","containers":[]}],"candidates":[]}', "candidates"),
    ('{"tableName":"a","tableName":"b"}', "tableName"),
    ('{"running":[{"serviceName":"web","id":"c1","ip":"10.0.0.1:80","id":"c2"}]}', "id"),
    ('{"candidates":[{"serviceName":"web","predicate":"a.test","predicate":"b.test"}]}', "predicate"),
])
def test_a_key_given_twice_in_one_object_is_refused_naming_it(text: str, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        payload.loads(text)
    assert info.value.field == field
    assert "given twice" in str(info.value) and "\n" not in str(info.value)


def test_address_is_an_alias_of_ip_named_in_its_errors() -> None:
    snap = payload.parse({"running": [{"serviceName": "app", "id": "c1", "address": "10.0.0.1:81"}]})
    assert (snap.running[0].container.host, snap.running[0].container.port) == ("10.0.0.1", 81)
    assert error_field({"running": [{"serviceName": "app", "id": "c1", "address": "bogus host"}]}) == "running[0].address"
    assert error_field({"candidates": [candidate(containers=[{"id": "c1", "address": "10.0.0.1:80", "port": 81}])]}
                       ) == "candidates[0].containers[0].port"
    # both given: equal is fine (as table/tableName), different is refused naming `address`
    same = payload.parse({"candidates": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:80", "address": "10.0.0.1:80"}])]})
    assert same.candidates[0].containers[0].host == "10.0.0.1"
    assert error_field({"candidates": [candidate(containers=[{"id": "c1", "ip": "10.0.0.1:80", "address": "10.0.0.2:80"}])]}
                       ) == "candidates[0].containers[0].address"
