"""The built-in HAProxy emitter (jinja2): the seed's layout, deterministic output.

Values reaching the template were validated by the model and the routing
modes, so the template does no escaping.  Users may point ``template`` at their
own jinja2 file; it receives ``services`` (each with ``servers``), ``routes``,
``bind`` and ``fallback``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from cosmos_core import routing_maps
from cosmos_core.bundle import Bundle
from cosmos_core.contracts import Provides, Route
from cosmos_core.errors import ValidationError
from cosmos_core.haproxy_names import backend_name
from cosmos_core.hookspecs import hookimpl
from cosmos_core.model import Service
from cosmos_core.settings import Settings

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


class HAProxyEmitter:
    """Renders ``haproxy.cfg`` from a jinja2 template."""

    def __init__(self, template_path: Path, bind: str) -> None:
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
        )
        try:
            self.template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ValidationError("template", str(template_path), f"line {exc.lineno}: {exc.message}") from None
        self.bind = bind
        self.name = str(template_path)
        self.use_maps = True  # False: every route as an ACL, no map files (benchmarks, tests)

    def render(self, services: Sequence[Service], routes: Sequence[Route]) -> Bundle:
        """The bundle: ``haproxy.cfg`` rendered from the template, and the routing maps beside it.

        Raises :class:`ValidationError` (field ``template``) if the template fails.
        """
        routing = routing_maps.plan(routes) if self.use_maps else routing_maps.acl_only(routes)
        context: dict[str, Any] = {
            "services": [view(s) for s in services],
            "routes": list(routes),
            "routing": routing,
            "bind": self.bind,
            "fallback": FALLBACK_BACKEND,
        }
        import jinja2

        try:
            return Bundle.of(self.template.render(context), routing.files)
        except jinja2.TemplateError as exc:
            raise ValidationError("template", self.name, f"cannot be rendered ({exc})") from None


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


def make_emitter(settings: Settings) -> HAProxyEmitter:
    path = Path(settings.template) if settings.template else DEFAULT_TEMPLATE
    return HAProxyEmitter(path, check_bind(settings.bind))


@hookimpl
def cosmos_emitters() -> list[Provides]:
    return [Provides("haproxy", make_emitter, "haproxy.cfg from a jinja2 template")]
