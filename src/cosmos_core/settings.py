"""Settings, resolved once: CLI flags > ``COSMOS_*`` env vars > ``cosmos.toml`` > defaults.

``cosmos.toml`` holds the same keys at top level, plus ``[plugins.NAME]`` tables
that plugins read through :meth:`Settings.plugin`.  An unknown key or a value of
the wrong type is a :class:`ValidationError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cosmos_core.errors import ValidationError
from cosmos_core.validate import check_name

ENV_PREFIX = "COSMOS_"
CONFIG_FILE = "cosmos.toml"


def default_store_url() -> str:
    """``sqlite:///`` under ``$XDG_STATE_HOME/cosmos`` (``~/.local/state/cosmos``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return "sqlite://" + os.path.join(base, "cosmos", "cosmos.db")


@dataclass(frozen=True)
class Settings:
    """Every setting the core and the bundled plugins read (see README: configuration)."""

    # state
    store: str = field(default_factory=default_store_url)
    table: str = "default"
    # rendering
    emitter: str = "haproxy"
    template: str | None = None
    bind: str = ":80"
    # agent (cosmos watch)
    events: str = "docker"
    reloader: str = "docker-exec"
    haproxy_container: str = "haproxy"
    haproxy_config: str = "/usr/local/etc/haproxy/haproxy.cfg"
    haproxy_bin: str = "haproxy"
    reload_command: str | None = None
    debounce_quiet: float = 0.1
    debounce_max_wait: float = 1.0
    debounce_storm_containers: int = 2
    debounce_storm_quiet: float = 1.0
    debounce_storm_max_wait: float = 8.0
    name_filter: str | None = None
    payload: str = "-"
    # server (cosmos serve) and remote emitter
    serve_host: str = "127.0.0.1"
    serve_port: int = 8080
    api_token: str | None = None
    max_body: int = 1_048_576
    remote_url: str | None = None
    remote_timeout: float = 5.0
    remote_retries: int = 3
    # logging
    log_format: str = "auto"
    log_level: str = "info"
    debug: bool = False
    # [plugins.NAME] tables from cosmos.toml
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def plugin(self, name: str) -> Mapping[str, Any]:
        """The ``[plugins.NAME]`` table (empty when absent)."""
        return self.plugins.get(name, {})


_KINDS = {"str": str, "int": int, "float": float, "bool": bool}
# name -> (type, optional); the annotations are strings (``from __future__ import annotations``).
_TYPES = {
    f.name: (_KINDS[str(f.type).split(" | ")[0]], str(f.type).endswith("| None"))
    for f in dataclasses.fields(Settings)
    if f.name != "plugins"
}


def load(overrides: Mapping[str, Any] | None = None, config_path: str | None = None,
         environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings.  ``overrides`` (CLI flags) with value ``None`` are ignored.

    ``config_path`` must exist when given; otherwise ``./cosmos.toml`` is read
    if present.  ``COSMOS_CONFIG`` also names the file.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_path or env.get(ENV_PREFIX + "CONFIG")
    file_values = _read_toml(Path(path), must_exist=True) if path else _read_toml(Path(CONFIG_FILE), must_exist=False)
    plugins = file_values.pop("plugins", {})
    if not isinstance(plugins, dict) or not all(isinstance(v, dict) for v in plugins.values()):
        raise ValidationError("cosmos.toml: plugins", plugins, "must be tables [plugins.NAME]")
    for key, value in file_values.items():
        values[key] = _coerce(key, value, f"cosmos.toml: {key}")
    for key in _TYPES:
        raw = env.get(ENV_PREFIX + key.upper())
        if raw is not None:
            values[key] = _coerce(key, raw, ENV_PREFIX + key.upper())
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    if "table" in values:
        check_name(values["table"], "table")
    return Settings(plugins=plugins, **values)


def _read_toml(path: Path, must_exist: bool) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if must_exist:
            raise ValidationError("config", str(path), "file not found") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(str(path), "", f"is not valid TOML ({exc})") from None
    except OSError as exc:
        raise ValidationError("config", str(path), f"cannot be read ({exc.strerror})") from None
    unknown = sorted(set(data) - set(_TYPES) - {"plugins"})
    if unknown:
        raise ValidationError(f"{path}: {unknown[0]}", data[unknown[0]], "is not a known setting")
    return data


def _coerce(key: str, value: Any, where: str) -> Any:
    if key not in _TYPES:
        raise ValidationError(where, value, "is not a known setting")
    kind, optional = _TYPES[key]
    if value == "" and optional:
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is str and not isinstance(value, str):
            raise ValueError
        if kind in (int, float) and not isinstance(value, (int, float, str)):
            raise ValueError
        if kind is float and not math.isfinite(float(value)):
            raise ValueError
        if kind is int and isinstance(value, float):
            raise ValueError
        if kind in (int, float) and isinstance(value, bool):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ValidationError(where, value, f"must be {'a finite ' if kind is float else ''}{kind.__name__}") from None
