"""Settings, resolved once: CLI flags > ``COSMOS_*`` env vars > ``cosmos.toml`` > defaults.

The core's own settings are the fields of :class:`Settings`.  Plugins declare
theirs with the ``cosmos_settings`` hook (:class:`~cosmos_core.contracts.Setting`
records); :func:`load` resolves both kinds the same way and a plugin reads its
values with :meth:`Settings.option`:

    flag > env var (``COSMOS_<NAME>`` or the declared one)
         > ``[plugins.SECTION] key`` in ``cosmos.toml`` > top-level ``name`` > default

An unknown top-level key, an unknown ``[plugins.SECTION]`` table, an unknown
key inside a table or a value of the wrong type is a :class:`ValidationError`
naming the key (exit 2).  When a plugin failed to load, unknown tables and keys
are only warned about: they may belong to it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from cosmos_core.contracts import SETTING_TYPES, Setting
from cosmos_core.errors import DuplicateNameError, ValidationError
from cosmos_core.validate import check_host_id, check_name

if TYPE_CHECKING:
    from cosmos_core.plugins import Plugins

ENV_PREFIX = "COSMOS_"
CONFIG_FILE = "cosmos.toml"
_SETTING_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SECTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def default_store_url() -> str:
    """``sqlite:///`` under ``$XDG_STATE_HOME/cosmos`` (``~/.local/state/cosmos``)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return "sqlite://" + os.path.join(base, "cosmos", "cosmos.db")


@dataclass(frozen=True)
class Settings:
    """The core's settings (README: configuration) plus every plugin's resolved options.

    ``events`` and ``reloader`` are ``None`` when not set: ``cosmos watch`` then
    picks ``docker`` / ``docker-exec`` if those plugins are installed.
    ``options`` maps a plugin setting's name to its resolved value; read it
    with :meth:`option`.
    """

    # state
    store: str = field(default_factory=default_store_url)
    table: str = "default"
    # rendering
    emitter: str = "haproxy"
    template: str | None = None
    bind: str = ":80"
    # agent (cosmos watch); the plugins' own options live in ``options``
    events: str | None = None
    reloader: str | None = None
    quarantine_file: str | None = None  # services HAProxy refused (cosmos status); default under XDG_STATE_HOME
    payload: str = "-"
    # rollout (issue 11): the template's `stats socket` address (None: `cosmos watch` with docker-exec uses
    # ipv4@127.0.0.1:9999 inside the HAProxy container; "off": none) and hard-stop-after in seconds (0: none)
    runtime_api: str | None = None
    hard_stop_after: int = 60
    # fleet mode (cosmos watch, cosmos fleet): host id (default: the host name), seconds
    host_id: str | None = None
    heartbeat: float = 5.0
    lease: float | None = None
    advertise_address: str | None = None
    # server (cosmos serve); the token is also what the remote pass sends
    serve_host: str = "127.0.0.1"
    serve_port: int = 8080
    api_token: str | None = None
    max_body: int = 1_048_576
    max_head: int = 65_536
    head_timeout: float = 5.0
    body_timeout: float = 10.0
    max_connections: int = 1000
    max_in_flight: int = 16
    # ops: Cosmos's own /metrics (cosmos watch --metrics-port; issue 15)
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    # logging
    log_format: str = "auto"
    log_level: str = "info"
    debug: bool = False
    # plugin settings: name -> value
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, setting: Setting) -> Any:
        """The value of a plugin's ``setting``: resolved by :func:`load`, else its default.

        Raises :class:`ValidationError` naming the setting if the value is not
        of the declared type (``Settings(options=...)`` built by hand).
        """
        if setting.name not in self.options:
            return setting.default
        value = self.options[setting.name]
        if value is None and setting.default is None:
            return None
        return coerce(setting.type, setting.default is None, value, setting.name)

    def __getattr__(self, name: str) -> Any:
        """``settings.haproxy_config`` and friends: plugin options read as attributes, as before."""
        if name.startswith("_") or name == "options":
            raise AttributeError(name)
        try:
            return self.__dict__["options"][name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__!s} has no setting {name!r}") from None


_KINDS = {"str": str, "int": int, "float": float, "bool": bool}
# name -> (type, optional); the annotations are strings (``from __future__ import annotations``).
CORE: dict[str, tuple[type, bool]] = {
    f.name: (_KINDS[str(f.type).split(" | ")[0]], str(f.type).endswith("| None"))
    for f in dataclasses.fields(Settings)
    if f.name != "options"
}


@dataclass
class Declared:
    """The settings plugins declare: by name, with owners, env vars and table keys."""

    by_name: dict[str, Setting] = field(default_factory=dict)
    owners: dict[str, list[str]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # env var -> name
    tables: dict[str, dict[str, str]] = field(default_factory=dict)  # section -> key -> name
    sections: dict[tuple[str, str], str] = field(default_factory=dict)  # (plugin, name) -> section
    records: dict[tuple[str, str], Setting] = field(default_factory=dict)  # (plugin, name) -> its own record
    partial: bool = False  # a plugin failed to load: unknown keys may be its

    @staticmethod
    def check(record: Setting) -> None:
        """Raise TypeError/ValueError if ``record`` itself is malformed."""
        if not isinstance(record.name, str) or not _SETTING_NAME.fullmatch(record.name):
            raise ValueError(f"setting name {record.name!r} must be lower case letters, digits and '_'")
        if record.type not in SETTING_TYPES:
            raise TypeError(f"setting {record.name!r}: type must be str, int, float or bool")
        if record.default is not None:
            coerce(record.type, False, record.default, f"setting {record.name!r} default")
        if record.section is not None and not _SECTION.fullmatch(record.section):
            raise ValueError(f"setting {record.name!r}: section {record.section!r} is not a valid table name")

    def add(self, record: Setting, plugin: str, section: str) -> None:
        """Add ``record`` of ``plugin``; a clash is a DuplicateNameError naming the key."""
        name = record.name
        if name in CORE:
            raise DuplicateNameError(f"setting {name!r} of plugin {plugin!r} is a core setting; rename it")
        known = self.by_name.get(name)
        if known is not None and (known.type, known.default, known.env_var) != (record.type, record.default, record.env_var):
            raise DuplicateNameError(
                f"setting {name!r} is declared by {self.owners[name][0]!r} and {plugin!r} with a different "
                "type, default or env var; uninstall one of them"
            )
        claimed = self.env.get(record.env_var)
        if claimed is not None and claimed != name:
            raise DuplicateNameError(f"env var {record.env_var} is claimed by settings {claimed!r} and {name!r}")
        table = self.tables.setdefault(section, {})
        if table.get(record.table_key, name) != name:
            raise DuplicateNameError(f"key {record.table_key!r} of [plugins.{section}] is claimed by settings "
                                     f"{table[record.table_key]!r} and {name!r}")
        self.by_name.setdefault(name, record)
        self.owners.setdefault(name, []).append(plugin)
        self.env[record.env_var] = name
        table[record.table_key] = name
        self.sections[(plugin, name)] = section
        self.records[(plugin, name)] = record

    def describe(self, plugin: str) -> list[dict[str, Any]]:
        """``plugin``'s settings as JSON-ready records (for ``cosmos plugins --json``), sorted by name."""
        return [
            {"name": name, "type": record.type.__name__, "default": record.default, "help": record.help,
             "env": record.env_var, "table": f"plugins.{self.sections[(owner, name)]}", "key": record.table_key}
            for (owner, name), record in sorted(self.records.items())
            if owner == plugin
        ]

    def optional(self, name: str) -> bool:
        return self.by_name[name].default is None


def load(overrides: Mapping[str, Any] | None = None, config_path: str | None = None,
         environ: Mapping[str, str] | None = None, plugins: "Plugins | None" = None) -> Settings:
    """Resolve settings.  ``overrides`` (CLI flags) with value ``None`` are ignored.

    ``config_path`` must exist when given; otherwise ``./cosmos.toml`` is read
    if present.  ``COSMOS_CONFIG`` also names the file.  ``plugins`` gives the
    declared plugin settings (default: every installed plugin).
    """
    if plugins is None:
        from cosmos_core.plugins import Plugins

        plugins = Plugins.discover()
    declared = plugins.settings
    declared.partial = bool(plugins.failed)
    env = os.environ if environ is None else environ
    path = config_path or env.get(ENV_PREFIX + "CONFIG")
    file_values = _read_toml(Path(path), must_exist=True) if path else _read_toml(Path(CONFIG_FILE), must_exist=False)
    tables = file_values.pop("plugins", {})
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise ValidationError("cosmos.toml: plugins", tables, "must be tables [plugins.NAME]")
    values: dict[str, Any] = {}
    for key, value in file_values.items():  # top-level keys
        if key in CORE or key in declared.by_name:
            values[key] = _coerce(declared, key, value, f"cosmos.toml: {key}")
        else:
            _unknown(declared, f"cosmos.toml: {key}", value, "is not a known setting")
    for key, value in _table_values(declared, tables).items():  # [plugins.SECTION] beats top level
        values[key] = value
    for key in CORE:
        raw = env.get(ENV_PREFIX + key.upper())
        if raw is not None:
            values[key] = _coerce(declared, key, raw, ENV_PREFIX + key.upper())
    for var, key in declared.env.items():
        raw = env.get(var)
        if raw is not None:
            values[key] = _coerce(declared, key, raw, var)
    for key, value in (overrides or {}).items():
        if value is not None:
            flag = f"--{key.replace('_', '-')}"
            if key not in CORE and key not in declared.by_name:
                raise ValidationError(flag, value, "is read by no installed plugin; is the plugin installed?")
            values[key] = _coerce(declared, key, value, flag)
    if "table" in values:
        check_name(values["table"], "table")
    core = {key: value for key, value in values.items() if key in CORE}
    options = {name: values.get(name, record.default) for name, record in declared.by_name.items()}
    return Settings(options=options, **core)


def _table_values(declared: Declared, tables: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    where_of: dict[str, str] = {}
    for section, table in tables.items():
        known = declared.tables.get(section)
        if known is None:
            listing = ", ".join(sorted(declared.tables)) or "(none)"
            _unknown(declared, f"cosmos.toml: plugins.{section}", "",
                     f"no installed plugin reads this table (tables: {listing})")
            continue
        for key, value in table.items():
            where = f"cosmos.toml: plugins.{section}.{key}"
            name = known.get(key)
            if name is None:
                _unknown(declared, where, value, f"is not a setting of [plugins.{section}] "
                                                 f"(settings: {', '.join(sorted(known))})")
                continue
            coerced = _coerce(declared, name, value, where)
            if name in values and values[name] != coerced:
                raise ValidationError(where, value, f"disagrees with {where_of[name]} ({values[name]!r})")
            values[name], where_of[name] = coerced, where
    return values


def _unknown(declared: Declared, where: str, value: Any, reason: str) -> None:
    if not declared.partial:
        raise ValidationError(where, value, reason)
    from cosmos_core.logs import get_logger

    get_logger("cosmos.settings").warning("unknown_setting", key=where, error=reason,
                                          hint="a plugin failed to load; see cosmos plugins")


def _read_toml(path: Path, must_exist: bool) -> dict[str, Any]:
    if not must_exist:
        try:
            path.stat()
        except FileNotFoundError:
            return {}  # the usual case (no ./cosmos.toml): tomllib is not even imported
        except OSError:
            pass  # reported by the open below
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        if must_exist:
            raise ValidationError("config", str(path), "file not found") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(str(path), "", f"is not valid TOML ({exc})") from None
    except OSError as exc:
        raise ValidationError("config", str(path), f"cannot be read ({exc.strerror})") from None


def _coerce(declared: Declared, key: str, value: Any, where: str) -> Any:
    if key == "host_id":  # "" is refused, not "unset": it would fall back to the machine's name
        return check_host_id(value, where)
    if key in CORE:
        kind, optional = CORE[key]
    else:
        kind, optional = declared.by_name[key].type, declared.optional(key)
    return coerce(kind, optional, value, where)


def coerce(kind: type, optional: bool, value: Any, where: str) -> Any:
    """``value`` as ``kind`` (str, int, float, bool); ``""`` is ``None`` when ``optional``.

    Text is converted (``"8080"``, ``"yes"``); a ``str`` setting takes text
    only.  Raises :class:`ValidationError` naming ``where``.
    """
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
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
            raise ValueError
        if kind is float and not math.isfinite(float(value)):
            raise ValueError
        if kind is int and isinstance(value, float):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ValidationError(where, value, f"must be {'a finite ' if kind is float else ''}{kind.__name__}") from None
