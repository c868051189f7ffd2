"""The built-in HAProxy emitter (jinja2): the seed's layout, deterministic output.

Values reaching the template were validated by the model and the routing
modes, so the template does no escaping.  Users may point ``template`` at their
own jinja2 file; it receives ``services`` (each with ``servers``), ``routes``,
``bind``, ``fallback`` and ``https`` (None, or the HTTPS frontend's context from
:func:`cosmos_core.tls.context`; the files it refers to come from :meth:`HAProxyEmitter.files`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from cosmos_core import routing_maps
from cosmos_core.bundle import Bundle
from cosmos_core.contracts import Provides, Route, Setting
from cosmos_core.errors import ValidationError
from cosmos_core.haproxy_names import backend_name
from cosmos_core.hookspecs import hookimpl
from cosmos_core.model import Service
from cosmos_core.settings import Settings
from cosmos_core.tls import TLSConfig, policy
from cosmos_core.tls import context as tls_context

if TYPE_CHECKING:
    import jinja2
    import jinja2.bccache

FALLBACK_BACKEND = "_no_match"
DEFAULT_TEMPLATE = Path(__file__).with_name("templates") / "haproxy.cfg.j2"


@dataclass(frozen=True)
class ServerView:
    id: str
    address: str
    cookie: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceView:
    name: str
    mode: str
    predicate: str
    cookie: str | None
    servers: tuple[ServerView, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    backend: str = ""  # the HAProxy backend name (cosmos_core.haproxy_names.backend_name)


def view(service: Service) -> ServiceView:
    """What the template sees of a service: servers with their own cookie values."""
    servers = tuple(
        ServerView(c.id, service.endpoint(c), cookie_value(c.id), dict(c.options)) for c in service.containers
    )
    return ServiceView(service.name, service.mode, service.predicate, service.cookie, servers, dict(service.options),
                       backend_name(service.name))


def cookie_value(container_id: str) -> str:
    """A server's sticky-cookie value: unique per server, stable across reloads."""
    return container_id


#: The cache key's name: the options above shape the compiled code, so they are part of it.
_CACHE_NAME = "cosmos-haproxy|trim_blocks,lstrip_blocks,keep_trailing_newline,StrictUndefined"


def template_cache() -> "jinja2.BytecodeCache":
    """jinja2's bytecode cache under ``$XDG_CACHE_HOME/cosmos`` (``~/.cache/cosmos``), one file per
    jinja2 version; a directory that cannot be read or written just means no cache (the template compiles)."""
    import os

    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: "jinja2.bccache.Bucket") -> None:
            try:
                super().load_bytecode(bucket)
            except OSError:
                pass

        def dump_bytecode(self, bucket: "jinja2.bccache.Bucket") -> None:
            try:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                super().dump_bytecode(bucket)
            except OSError:
                pass

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return QuietCache(os.path.join(base, "cosmos"), f"jinja2-{jinja2.__version__}-%s.cache")


class HAProxyEmitter:
    """Renders ``haproxy.cfg`` from a jinja2 template."""

    def __init__(self, template_path: Path, bind: str, tls: "TLSConfig | None" = None,
                 rollout: Mapping[str, Any] | None = None, stats_bind: str | None = None,
                 stats_auth: str | None = None) -> None:
        import jinja2

        try:
            source = template_path.read_bytes().decode("utf-8-sig")  # a leading BOM is not config text
        except OSError as exc:
            raise ValidationError("template", str(template_path), f"cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise ValidationError("template", str(template_path),
                                  f"is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                                  f"save {template_path.name} as UTF-8") from None
        env = jinja2.Environment(
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
            # the compiled template is reused across runs; keyed by the source's checksum, so an edit recompiles
            loader=jinja2.DictLoader({_CACHE_NAME: source}),
            bytecode_cache=template_cache(),
        )
        try:
            self.template = env.get_template(_CACHE_NAME)
        except jinja2.TemplateSyntaxError as exc:
            raise ValidationError("template", str(template_path), f"line {exc.lineno}: {exc.message}") from None
        self.bind = bind
        self.rollout = dict(rollout or {"runtime_api": None, "hard_stop_after": None, "spares": 0})
        self.tls = tls
        self.challenges: dict[str, str] = {}  # ACME HTTP-01: token -> key authorization
        self.stats = {"stats_bind": stats_bind, "stats_auth": stats_auth}  # ops: --stats-bind frontend
        self.name = str(template_path)
        self.use_maps = True  # False: every route as an ACL, no map files (benchmarks, tests)

    def render(self, services: Sequence[Service], routes: Sequence[Route]) -> Bundle:
        """The bundle: ``haproxy.cfg`` rendered from the template, the routing maps and the HTTPS files beside it.

        Raises :class:`ValidationError` (field ``template``) if the template fails.
        """
        routing = routing_maps.plan(routes) if self.use_maps else routing_maps.acl_only(routes)
        context: dict[str, Any] = {
            "services": [view(s) for s in services],
            "routes": list(routes),
            "routing": routing,
            "bind": self.bind,
            "fallback": FALLBACK_BACKEND,
            "rollout": self.rollout,
            "https": tls_context(self.tls, {backend_name(s.name): policy(dict(s.options)) for s in services}, routes),
            **self.stats,
        }
        import jinja2

        try:
            return Bundle.of(self.template.render(context), {**routing.files, **self.files()})
        except jinja2.TemplateError as exc:
            raise ValidationError("template", self.name, f"cannot be rendered ({exc})") from None

    def files(self) -> dict[str, bytes]:
        """The files the config refers to besides itself (relative paths -> bytes): with HTTPS on,
        ``certs/*.pem``, ``crt-list`` and the ACME challenge map; else none."""
        from cosmos_core.tls import files

        return files(self.tls, self.challenges) if self.tls else {}


def check_bind(value: str) -> str:
    """``:port``, ``*:port``, ``ipv4-or-name:port`` or ``[ipv6]:port``."""
    from cosmos_core.validate import check_host, check_port

    host, sep, port = value.rpartition(":")
    if not sep or check_port(port, "bind") is None:
        raise ValidationError("bind", value, "must be [address]:port, e.g. :80, *:80, 127.0.0.1:8080 or [::1]:80")
    if host.startswith("[") and host.endswith("]") and ":" in host:
        check_host(host[1:-1], "bind")
    elif host not in ("", "*"):
        if ":" in host or "[" in host or "]" in host:
            raise ValidationError("bind", value, "an IPv6 address needs brackets: [::1]:80")
        check_host(host, "bind")
    return value


def check_stats_bind(value: str | None) -> str | None:
    """``--stats-bind``: a bare port means loopback (``8404`` -> ``127.0.0.1:8404``); else as :func:`check_bind`."""
    if value is None:
        return None
    if value.isascii() and value.isdigit():
        from cosmos_core.validate import check_port

        return f"127.0.0.1:{check_port(value, 'stats_bind')}"
    try:
        return check_bind(value)
    except ValidationError as exc:
        raise ValidationError("stats_bind", value, exc.reason + " (or a bare port for loopback)") from None


_STATS_AUTH = re.compile(r"[A-Za-z0-9_.-]{1,64}:[A-Za-z0-9_.~!%+=,@^*-]{8,128}")


def check_stats_auth(value: str | None) -> str | None:
    """``user:password`` for HAProxy's stats page (a password of 8-128 safe characters)."""
    if value is not None and not _STATS_AUTH.fullmatch(value):
        raise ValidationError("stats_auth", "(hidden)", "must be USER:PASSWORD, a user of letters, digits, '_ . -' "
                              "and a password of 8-128 letters, digits or _.~!%+=,@^*-")
    return value


#: ops (issue 15): HAProxy's own metrics frontend, declared by the emitter that renders it.
STATS_BIND = Setting("stats_bind", str, None, "serve HAProxy's Prometheus exporter on /metrics: PORT (loopback) "
                     "or ADDRESS:PORT (flag --stats-bind)", section="haproxy")
STATS_AUTH = Setting("stats_auth", str, None, "USER:PASSWORD: also serve HAProxy's stats page behind basic auth",
                     section="haproxy")


def make_emitter(settings: Settings) -> HAProxyEmitter:
    path = Path(settings.template) if settings.template else DEFAULT_TEMPLATE
    return HAProxyEmitter(path, check_bind(settings.bind), tls=tls_config(settings), rollout=rollout_context(settings),
                          stats_bind=check_stats_bind(settings.option(STATS_BIND)),
                          stats_auth=check_stats_auth(settings.option(STATS_AUTH)))


def rollout_context(settings: Settings) -> dict[str, Any]:
    """The template's ``rollout``: ``runtime_api`` (a ``stats socket`` address or None),
    ``hard_stop_after`` (seconds, 0: none) and ``spares`` (spare server slots per backend)."""
    api, spares = None, 0
    if settings.runtime_api is not None:  # the churn module only when a runtime API may be on (start-up time)
        from cosmos_core.haproxy.churn import SPARES, check_runtime_api

        api = check_runtime_api(settings.runtime_api)
        spares = SPARES if api else 0
    if settings.hard_stop_after < 0:
        raise ValidationError("hard_stop_after", settings.hard_stop_after, "must be >= 0 seconds")
    return {"runtime_api": api, "hard_stop_after": settings.hard_stop_after or None, "spares": spares}


# https (issue 12): the emitter's own settings
CERTS_DIR = Setting("certs_dir", str, None, "PEM files (chain + key) to serve over HTTPS; turns HTTPS on",
                    section="haproxy")
HTTPS_BIND = Setting("https_bind", str, ":443", "the HTTPS frontend's bind address", section="haproxy")
HTTPS_DEFAULT_CERT = Setting("https_default_cert", str, None,
                             "file stem (in certs_dir, which it needs) of the certificate served to names "
                             "no certificate carries (default: refuse them, strict-sni)", section="haproxy")


def tls_config(settings: Settings) -> TLSConfig | None:
    """HTTPS is on when a certificate directory or an ACME directory is set; loads the certificates.

    ``acme_directory`` is the ``cosmos-acme`` plugin's setting (absent when it is not installed).
    """
    certs_dir = settings.option(CERTS_DIR)
    acme = bool(settings.options.get("acme_directory"))
    default = settings.option(HTTPS_DEFAULT_CERT)
    if default is not None and not certs_dir:
        raise ValidationError("https_default_cert", default, "needs certs_dir (it names a file stem there)")
    if not certs_dir and not acme:
        return None
    from cosmos_core.certs import load_dir

    certs = load_dir(certs_dir) if certs_dir else []
    if default is not None:
        by_stem = {Path(c.path).stem: c.name for c in certs} | {c.name: c.name for c in certs}
        if default not in by_stem:
            raise ValidationError("https_default_cert", default,
                                  "names no loaded certificate (the file stem in certs_dir)")
        default = by_stem[default]
    bind = settings.option(HTTPS_BIND)
    try:
        check_bind(bind)
    except ValidationError as exc:
        raise ValidationError("https_bind", bind, exc.reason) from None
    return TLSConfig(bind, tuple(certs), default, acme)


@hookimpl
def cosmos_emitters() -> list[Provides]:
    return [Provides("haproxy", make_emitter, "haproxy.cfg from a jinja2 template")]


@hookimpl
def cosmos_settings() -> list[Setting]:
    return [CERTS_DIR, HTTPS_BIND, HTTPS_DEFAULT_CERT, STATS_BIND, STATS_AUTH]
