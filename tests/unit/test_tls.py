"""HTTPS rendering (pure): crt-list, bundle files, template context and the rendered frontends."""

from __future__ import annotations

import pytest

from cosmos_core import tls
from cosmos_core.builtin.haproxy_emitter import HAProxyEmitter, DEFAULT_TEMPLATE, tls_config
from cosmos_core.certs import parse_pem
from cosmos_core.contracts import Route
from cosmos_core.haproxy_names import acl_name, backend_name
from cosmos_core.errors import ValidationError
from cosmos_core.model import Service
from cosmos_core.options import freeze
from cosmos_core.settings import Settings
from tests.support.tls import make_ca


@pytest.fixture(scope="module")
def certs():
    ca = make_ca()
    return (parse_pem(ca.issue(["a.test"]), "a", name="a"), parse_pem(ca.issue(["*.b.test"]), "b", name="b"))


def routes() -> list[Route]:
    return [Route("app", "app", ("req.hdr(host),field(1,:) -m str -i a.test",)),
            Route("red", "red", ("path /r", "path_beg /r/")),
            Route("off", "off", ("path /o", "path_beg /o/"))]


def test_crt_list_puts_the_default_first_and_files_hold_each_pem(certs) -> None:
    config = tls.TLSConfig(":443", certs, default="b")
    assert tls.crt_list(config) == "certs/b.pem\ncerts/a.pem\n"
    files = tls.files(config)
    assert files["certs/a.pem"] == certs[0].pem and files["crt-list"] == b"certs/b.pem\ncerts/a.pem\n"
    assert tls.CHALLENGE_MAP not in files
    with_acme = tls.files(tls.TLSConfig(":443", certs, challenges=True), {"tok2": "k2", "tok1": "k1"})
    assert with_acme[tls.CHALLENGE_MAP] == b"tok1 k1\ntok2 k2\n"


def test_context_serves_on_and_redirect_but_not_off(certs) -> None:
    ctx = tls.context(tls.TLSConfig("127.0.0.1:8443", certs), {"red": "redirect", "off": "off"}, routes())
    assert [r.service for r in ctx["routes"]] == ["app", "red"]
    assert ctx["redirects"] == [{"service": "red", "condition": "{ path /r } || { path_beg /r/ }"}]
    assert ctx["location"] == "https://%[req.hdr(host),field(1,:)]:8443%[capture.req.uri]"
    assert "strict-sni" in ctx["bind"] and "alpn h2,http/1.1" in ctx["bind"] and "ssl-min-ver TLSv1.2" in ctx["bind"]
    assert ctx["challenge_map"] is None
    assert "strict-sni" not in tls.context(tls.TLSConfig(":443", certs, "a"), {}, [])["bind"]
    assert tls.port_suffix(":443") == "" and tls.context(None, {}, []) is None


def render(tls_cfg, services) -> str:
    emitter = HAProxyEmitter(DEFAULT_TEMPLATE, ":80", tls_cfg)
    bundle = emitter.render(services, [Route(backend_name(s.name), acl_name(s.name),
                                             (f"req.hdr(host),field(1,:) -m str -i {s.predicate}",))
                                       for s in services])
    # the HTTPS files travel in the bundle; beside them only the routing maps
    assert set(emitter.files()) <= set(bundle.files)
    assert {p for p in set(bundle.files) - set(emitter.files()) if not p.startswith("maps/")} == {"haproxy.cfg"}
    return bundle.config


def test_without_https_the_config_has_no_tls_lines() -> None:
    config = render(None, [Service("app", "host", "a.test", options=freeze({"hsts": 60, "https": "redirect"}))])
    assert "ssl" not in config and "redirect" not in config and "Strict-Transport" not in config
    assert "frontend https" not in config


def test_rendered_https_frontend_redirect_hsts_and_challenges(certs) -> None:
    services = [Service("app", "host", "a.test", options=freeze({"hsts": 600})),
                Service("red", "host", "r.b.test", options=freeze({"https": "redirect"})),
                Service("plain", "host", "p.test", options=freeze({"https": "off"}))]
    config = render(tls.TLSConfig(":443", certs, challenges=True), services)
    http, _, rest = config.partition("frontend https")
    https, _, backends = rest.partition("# Define backends")
    assert "use_backend be_plain" in http and "use_backend be_plain" not in https
    assert "use_backend be_app" in https and "use_backend be_red" in https
    assert ("http-request redirect location https://%[req.hdr(host),field(1,:)]%[capture.req.uri] code 308 "
            "if { req.hdr(host),field(1,:) -m str -i r.b.test }") in http
    assert "map(maps/acme-challenges.map)" in http
    assert 'http-response set-header Strict-Transport-Security "max-age=600" if { ssl_fc }' in backends
    assert backends.count("Strict-Transport-Security") == 1


def test_tls_config_from_settings(certs, tmp_path) -> None:
    assert tls_config(Settings()) is None
    (tmp_path / "a.pem").write_bytes(certs[0].pem)
    cfg = tls_config(Settings(options={"certs_dir": str(tmp_path), "https_bind": "127.0.0.1:8443",
                                       "https_default_cert": "a"}))
    assert [c.name for c in cfg.certificates] == ["a"] and cfg.default == "a" and not cfg.challenges
    with pytest.raises(ValidationError, match="https_default_cert"):
        tls_config(Settings(options={"certs_dir": str(tmp_path), "https_default_cert": "zzz"}))
    with pytest.raises(ValidationError, match="https_bind"):
        tls_config(Settings(options={"certs_dir": str(tmp_path), "https_bind": "nope"}))
    assert tls_config(Settings(options={"acme_directory": "https://127.0.0.1:14000/dir"})).challenges


@pytest.mark.parametrize("raw, field, message", [("maybe", "https", "off, on or redirect"),
                                                 ("-1", "hsts", "whole number"), (True, "hsts", "whole number")])
def test_https_options_refuse_bad_values(raw, field, message) -> None:
    from cosmos_core.options import SERVICE_OPTIONS

    with pytest.raises(ValidationError, match=message):
        SERVICE_OPTIONS[field].check(raw, field)
    assert SERVICE_OPTIONS["https"].check(" Redirect ", "https") == "redirect"
    assert SERVICE_OPTIONS["hsts"].check("31536000", "hsts") == 31536000


def test_attach_writes_the_https_files_for_the_host_reloader(certs, tmp_path) -> None:
    from types import SimpleNamespace

    from cosmos_core.tls_agent import attach

    emitter = HAProxyEmitter(DEFAULT_TEMPLATE, ":80", tls.TLSConfig(":443", certs))
    settings = Settings(reloader="host", options={"haproxy_config": str(tmp_path / "etc" / "haproxy.cfg")})
    runtime = SimpleNamespace(emitter=emitter, certificate_resolver=None, settings=settings)
    agent = SimpleNamespace(observers=[])
    assert attach(runtime, agent)
    assert (tmp_path / "etc" / "crt-list").read_text() == "certs/a.pem\ncerts/b.pem\n"
    assert (tmp_path / "etc" / "certs" / "a.pem").stat().st_mode & 0o777 == 0o600
    assert agent.observers == []
    assert not attach(SimpleNamespace(emitter=HAProxyEmitter(DEFAULT_TEMPLATE, ":80"), certificate_resolver=None,
                                      settings=settings), agent)


def test_https_options_from_payload_and_labels() -> None:
    from cosmos_core import payload
    from cosmos_core.options import SERVICE_OPTIONS, from_labels

    snap = payload.loads(json_bytes({"table": "t", "candidates": [
        {"serviceName": "a", "configMode": "host", "predicate": "a.test", "https": "redirect", "hsts": 60,
         "containers": []}]}))
    assert dict(snap.candidates[0].options) == {"https": "redirect", "hsts": 60}
    with pytest.raises(ValidationError) as err:
        payload.loads(json_bytes({"table": "t", "candidates": [
            {"serviceName": "a", "configMode": "host", "predicate": "a.test", "https": "sometimes"}]}))
    assert "https" in err.value.field and "off, on or redirect" in str(err.value)
    assert dict(from_labels({"cosmos.https": "off", "cosmos.hsts": "0"}, SERVICE_OPTIONS)) == {"https": "off", "hsts": 0}
    with pytest.raises(ValidationError, match="cosmos.https"):
        from_labels({"cosmos.https": "yes"}, SERVICE_OPTIONS)


def json_bytes(data) -> bytes:
    import json

    return json.dumps(data).encode()


def test_default_cert_needs_certs_dir_and_may_name_a_file_stem(tmp_path) -> None:
    from cosmos_core.certs import file_name

    with pytest.raises(ValidationError, match="https_default_cert.*needs certs_dir"):
        tls_config(Settings(options={"https_default_cert": "good"}))
    with pytest.raises(ValidationError, match="https_default_cert.*needs certs_dir"):
        tls_config(Settings(options={"https_default_cert": "good",
                                     "acme_directory": "https://127.0.0.1:14000/dir"}))
    ca = make_ca()
    (tmp_path / "a b.pem").write_bytes(ca.issue(["web.test"]))
    (tmp_path / "a_b.pem").write_bytes(ca.issue(["ec.test"]))
    for default, name in (("a b", file_name("a b")), (file_name("a b"), file_name("a b")), ("a_b", "a_b")):
        cfg = tls_config(Settings(options={"certs_dir": str(tmp_path), "https_default_cert": default}))
        assert cfg.default == name and tls.crt_list(cfg).startswith(f"certs/{name}.pem\n")


def test_a_certs_dir_file_that_goes_bad_keeps_serving_its_last_good_version(tmp_path) -> None:
    """A half-written copy caught by the poll once took the certificate out of HAProxy at once."""
    from types import SimpleNamespace

    from structlog.testing import capture_logs

    from cosmos_core.certs import dir_signature
    from cosmos_core.tls_agent import attach

    ca = make_ca()
    certs_dir = tmp_path / "certs"
    certs_dir.mkdir()
    good, other = ca.issue(["good.test"]), ca.issue(["other.test"])
    (certs_dir / "good.pem").write_bytes(good)
    (certs_dir / "other.pem").write_bytes(other)
    etc = tmp_path / "etc"
    settings = Settings(reloader="host", options={"haproxy_config": str(etc / "haproxy.cfg"),
                                                  "certs_dir": str(certs_dir)})
    emitter = HAProxyEmitter(DEFAULT_TEMPLATE, ":80", tls_config(settings))
    runtime = SimpleNamespace(emitter=emitter, certificate_resolver=None, settings=settings)
    wiring = attach(runtime, SimpleNamespace(observers=[]), poll=None)
    served = (etc / "certs" / "good.pem").read_bytes()

    def bad(path, data: bytes) -> None:
        before = dir_signature(certs_dir)
        path.write_bytes(data)
        while dir_signature(certs_dir) == before:  # same size and mtime granule: make the change visible
            path.write_bytes(data + b"\n")
            data += b"\n"

    with capture_logs() as logs:
        bad(certs_dir / "good.pem", b"garbage\n")
        assert wiring.refresh() is True
        bad(certs_dir / "good.pem", good[: len(good) // 2])  # a copy caught midway
        assert wiring.refresh() is True
    assert [c.name for c in wiring.brought] == ["good", "other"]
    assert (etc / "crt-list").read_text() == "certs/good.pem\ncerts/other.pem\n"
    assert (etc / "certs" / "good.pem").read_bytes() == served
    skipped = [e for e in logs if e["event"] == "certificate_skipped"]
    assert len(skipped) == 2 and all(e["serving"] == "last good version" for e in skipped), skipped
    assert not [e for e in logs if e["event"] == "certificate_removed"]

    (certs_dir / "good.pem").unlink()  # removed: it leaves
    with capture_logs() as logs:
        assert wiring.refresh() is True
    assert [c.name for c in wiring.brought] == ["other"]
    assert (etc / "crt-list").read_text() == "certs/other.pem\n"
    assert [e["file"] for e in logs if e["event"] == "certificate_removed"] == ["certs/good.pem"]

    (certs_dir / "good.pem").write_bytes(b"garbage\n")  # bad from the start: nothing to keep
    with capture_logs() as logs:
        assert wiring.refresh() is True
    assert [c.name for c in wiring.brought] == ["other"]
    assert [e.get("serving") for e in logs if e["event"] == "certificate_skipped"] == [None]


def test_acme_is_not_asked_for_a_host_whose_file_name_a_brought_certificate_has(tmp_path) -> None:
    """A certs_dir ``web.test.pem`` holding other.test and an ACME certificate for web.test would share
    ``certs/web.test.pem``: the one would replace the other in HAProxy."""
    from types import SimpleNamespace

    from structlog.testing import capture_logs

    from cosmos_core.tls_agent import attach

    class Resolver:
        def __init__(self) -> None:
            self.asked: list[list[str]] = []

        def certificates(self) -> list:
            return []

        def subscribe(self, callback) -> None:
            pass

        def observe(self, hosts, reloaded=False, keep=()) -> None:
            self.asked.append(list(hosts))

    ca = make_ca()
    certs_dir = tmp_path / "certs"
    certs_dir.mkdir()
    (certs_dir / "web.test.pem").write_bytes(ca.issue(["other.test"]))
    settings = Settings(options={"certs_dir": str(certs_dir)})
    resolver = Resolver()
    runtime = SimpleNamespace(emitter=HAProxyEmitter(DEFAULT_TEMPLATE, ":80", tls_config(settings)),
                              certificate_resolver=resolver, settings=settings)
    agent = SimpleNamespace(observers=[])
    attach(runtime, agent, poll=None)
    services = [Service(name=n, mode="host", predicate=f"{n}.test") for n in ("web", "api", "other")]
    with capture_logs() as logs:
        for _ in range(2):
            agent.observers[0](SimpleNamespace(services=services), SimpleNamespace(reloaded=False))
    assert resolver.asked == [["api.test"], ["api.test"]]
    warned = [e for e in logs if e["event"] == "certificate_not_ordered"]
    assert len(warned) == 1 and warned[0]["host"] == "web.test" and warned[0]["file"] == str(certs_dir / "web.test.pem")
