"""The built-in HAProxy emitter: the seed's layout, own cookie per server, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmos_core import payload
from cosmos_core.errors import ValidationError
from cosmos_core.pipeline import render, validate_routing
from cosmos_core.plugins import Plugins
from cosmos_core.reconcile import reconcile
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from cosmos_routing_host_path import plugin as routing

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"


def runtime(**settings) -> Runtime:
    return Runtime(Settings(**settings), Plugins.from_plugins(routing))


def seed_config(rt: Runtime | None = None) -> str:
    rt = rt or runtime()
    snapshot = validate_routing(payload.loads(SEED.read_text()), rt.routing)
    return render(rt, reconcile({}, snapshot)).config


def block(config: str, header: str) -> list[str]:
    lines = config.splitlines()
    start = lines.index(header)
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    return [line.strip() for line in lines[start + 1:end] if line.strip()]


def test_seed_layout() -> None:
    config = seed_config()
    frontend = block(config, "frontend http")
    assert frontend[0] == "bind :80" and frontend[-1] == "default_backend _no_match"
    assert "use_backend %[var(txn.cosmos_backend)] if { var(txn.cosmos_backend) -m found }" in frontend
    assert not any(line.startswith("acl ") for line in frontend)  # no per-service ACL: map lookups
    rt = runtime()
    bundle = render(rt, reconcile({}, validate_routing(payload.loads(SEED.read_text()), rt.routing)))
    assert bundle.aux == {"maps/hosts.map": b"first.example.com/ be_app1\nsecond.example.com/ be_app2\n",
                          "maps/paths.map": b"", "maps/wildcards.map": b""}


def test_seed_layout_with_acl_routing() -> None:
    rt = runtime()
    rt.emitter.use_maps = False
    assert block(seed_config(rt), "frontend http") == [
        "bind :80",
        "# --- routing (cosmos_core/routing_maps.py): map lookups, then ACL routes of other modes ---",
        "# A path with a dot segment (/x/../api, /./api, also %2e-encoded) gets a 400, never a route: its RFC 3986",
        "# normalised form could belong to another service. Clients remove dot segments before sending.",
        "http-request return status 400 content-type text/plain string 'a dot segment (. or ..) in the path is not "
        "allowed' if { path -m reg /([.]|%2[eE])([.]|%2[eE])?(/|$) }",
        "acl acl_app1 req.hdr(host),field(1,:) -m str -i first.example.com first.example.com.",
        "use_backend be_app1 if acl_app1",
        "acl acl_app2 req.hdr(host),field(1,:) -m str -i second.example.com second.example.com.",
        "use_backend be_app2 if acl_app2",
        "# --- end of routing ---",
        "default_backend _no_match",
    ]
    config = seed_config()
    assert block(config, "backend be_app2") == [
        "mode http", "balance roundrobin", "option forwardfor", "cookie JSESSIONID prefix nocache",
        "server das843j3h3k 192.168.1.10:80 check cookie das843j3h3k",
        "server fds32k4354f 192.168.1.11:80 check cookie fds32k4354f",
    ]
    for section in ("global", "defaults", "backend be_app1", "backend _no_match"):
        assert section in config.splitlines()


def test_every_server_gets_its_own_cookie_value() -> None:
    servers = [line.split() for line in seed_config().splitlines() if line.strip().startswith("server ")]
    values = [words[words.index("cookie") + 1] for words in servers]
    assert len(values) == len(set(values)) == 3
    assert "JSESSIONID" not in values


def test_no_cookie_no_cookie_lines() -> None:
    data = payload.parse({"candidates": [{"serviceName": "a", "predicate": "a.example.com",
                                          "containers": [{"id": "c1", "ip": "10.0.0.1:80"}]}]})
    rt = runtime()
    config = render(rt, reconcile({}, validate_routing(data, rt.routing))).config
    assert "cookie" not in config
    assert "    server c1 10.0.0.1:80 check\n" in config


def test_output_is_deterministic() -> None:
    assert seed_config() == seed_config()


def test_bind_setting_and_custom_template(tmp_path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{% for s in services %}{{ s.name }}={{ s.servers|length }}\n{% endfor %}bind={{ bind }}\n")
    assert seed_config(runtime(template=str(template), bind="127.0.0.1:8080")) == "app1=1\napp2=2\nbind=127.0.0.1:8080\n"


@pytest.mark.parametrize("bind", ["80", "bad_host:80", ":0", "127.0.0.1:", ":80\n", "a b:80", "[[::1]]:80",
                                  "]1.2.3.4[:80", "::1:80", "[1.2.3.4]:80"])
def test_bad_bind_is_refused(bind) -> None:
    with pytest.raises(ValidationError) as info:
        runtime(bind=bind).emitter
    assert info.value.field == "bind"


@pytest.mark.parametrize("bind", [":80", "*:80", "127.0.0.1:8080", "[::1]:80", "lb.internal:80"])
def test_good_binds_are_accepted(bind) -> None:
    assert runtime(bind=bind).emitter.bind == bind


def test_a_template_using_an_unknown_variable_is_a_validation_error(tmp_path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ nope }}\n")
    with pytest.raises(ValidationError) as info:
        seed_config(runtime(template=str(template)))
    assert info.value.field == "template" and "nope" in str(info.value)


def test_a_stored_predicate_its_mode_refuses_is_never_rendered() -> None:
    from cosmos_core.errors import StoreError
    from cosmos_core.model import Container, Service

    bad = Service("a", "host", "-f", None, 80, (Container("c1", "10.0.0.1"),))
    with pytest.raises(StoreError, match="predicate"):
        render(runtime(), {"a": bad})


def test_template_errors_are_validation_errors(tmp_path) -> None:
    missing = tmp_path / "missing.j2"
    with pytest.raises(ValidationError):
        runtime(template=str(missing)).emitter
    broken = tmp_path / "broken.j2"
    broken.write_text("{% for %}")
    with pytest.raises(ValidationError) as info:
        runtime(template=str(broken)).emitter
    assert "line 1" in str(info.value)


def test_the_compiled_template_is_cached_and_an_edit_recompiles(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = seed_config()
    cached = list((tmp_path / "cache" / "cosmos").iterdir())
    assert len(cached) == 1 and cached[0].stat().st_size > 0
    assert seed_config() == first  # from the cache: the same bytes
    template = tmp_path / "t.j2"
    template.write_text("one={{ bind }}\n")
    assert seed_config(runtime(template=str(template))) == "one=:80\n"
    template.write_text("two={{ bind }}\n")  # same path, new source: compiled again, not the cached code
    assert seed_config(runtime(template=str(template))) == "two=:80\n"
    assert seed_config() == first


@pytest.mark.parametrize("where", ["file", "unwritable", "corrupt"])
def test_a_cache_that_cannot_be_used_just_means_no_cache(tmp_path, monkeypatch, where) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh"))
    expected = seed_config()
    cache = tmp_path / "cache"
    if where == "file":
        cache.write_text("")  # $XDG_CACHE_HOME is a file: no directory can be made in it
    elif where == "unwritable":
        (cache / "cosmos").mkdir(parents=True)
        monkeypatch.setattr("os.makedirs", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")))
        monkeypatch.setattr("tempfile.NamedTemporaryFile",
                            lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")))
    else:
        cache_dir = cache / "cosmos"
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
        seed_config()
        for file in cache_dir.iterdir():
            file.write_bytes(b"j2 not bytecode")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert seed_config() == expected
    assert seed_config() == expected
