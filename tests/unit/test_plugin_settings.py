"""Plugin-declared settings: precedence, tables, clashes, unknown keys and tables."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from cosmos_core.contracts import Setting
from cosmos_core.errors import DuplicateNameError, ValidationError
from cosmos_core.hookspecs import hookimpl
from cosmos_core.plugins import Plugins
from cosmos_core.settings import Settings, load

COLOUR = Setting("colour", str, "blue", "a colour", section="paint")
COATS = Setting("coats", int, 2, "how many coats", section="paint", env="PAINT_COATS")
SHINY = Setting("shiny", bool, False, "gloss finish", section="paint", key="gloss")


def declaring(*records: Setting, name: str = "paint_plugin") -> types.SimpleNamespace:
    @hookimpl
    def cosmos_settings() -> list[Setting]:
        return list(records)

    return types.SimpleNamespace(__name__=name, cosmos_settings=cosmos_settings)


def resolve(tmp_path: Path, toml: str = "", environ: dict[str, str] | None = None,
            flags: dict[str, object] | None = None, *plugins: object) -> Settings:
    path = tmp_path / "cosmos.toml"
    path.write_text(toml)
    found = Plugins.from_plugins(*(plugins or (declaring(COLOUR, COATS, SHINY),)))
    return load(flags, str(path), environ=environ or {}, plugins=found)


def test_defaults_when_nothing_sets_them(tmp_path: Path) -> None:
    settings = resolve(tmp_path)
    assert (settings.option(COLOUR), settings.option(COATS), settings.option(SHINY)) == ("blue", 2, False)
    assert settings.colour == "blue"  # attribute access, as plugins read settings before


def test_flag_beats_env_beats_table_beats_top_level_beats_default(tmp_path: Path) -> None:
    toml = 'colour = "top"\ncoats = 3\n[plugins.paint]\ncolour = "table"\ngloss = true\n'
    settings = resolve(tmp_path, toml, {"COSMOS_COLOUR": "env", "PAINT_COATS": "5"}, {"colour": "flag"})
    assert settings.option(COLOUR) == "flag"
    assert settings.option(COATS) == 5            # the declared env var, converted to int
    assert settings.option(SHINY) is True          # the table key "gloss"
    assert resolve(tmp_path, toml, {"COSMOS_COLOUR": "env"}).option(COLOUR) == "env"
    assert resolve(tmp_path, toml).option(COLOUR) == "table"
    assert resolve(tmp_path, 'colour = "top"\n').option(COLOUR) == "top"


@pytest.mark.parametrize("toml, environ, where", [
    ('colr = "x"\n', {}, "cosmos.toml: colr"),
    ('[plugins.pain]\ncolour = "x"\n', {}, "cosmos.toml: plugins.pain"),
    ('[plugins.paint]\ncolor = "x"\n', {}, "cosmos.toml: plugins.paint.color"),
    ('coats = "many"\n', {}, "cosmos.toml: coats"),
    ("", {"PAINT_COATS": "many"}, "PAINT_COATS"),
])
def test_unknown_keys_tables_and_bad_values_name_the_key(tmp_path: Path, toml, environ, where) -> None:
    with pytest.raises(ValidationError) as info:
        resolve(tmp_path, toml, environ)
    assert info.value.field == where


def test_a_flag_for_a_setting_no_plugin_declares_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        resolve(tmp_path, "", {}, {"lacquer": "x"})
    assert info.value.field == "--lacquer" and "no installed plugin" in info.value.reason


def test_a_name_declared_twice_differently_is_an_error_naming_it(tmp_path: Path) -> None:
    other = declaring(Setting("colour", str, "red", section="other"), name="other_plugin")
    with pytest.raises(DuplicateNameError, match="'colour' is declared by 'paint_plugin' and 'other_plugin'"):
        resolve(tmp_path, "", {}, None, declaring(COLOUR), other)


def test_a_shared_declaration_is_one_setting_read_from_either_table(tmp_path: Path) -> None:
    other = declaring(Setting("colour", str, "blue", section="other"), name="other_plugin")
    settings = resolve(tmp_path, '[plugins.other]\ncolour = "green"\n', {}, None, declaring(COLOUR), other)
    assert settings.option(COLOUR) == "green"
    with pytest.raises(ValidationError, match="disagrees"):
        resolve(tmp_path, '[plugins.other]\ncolour = "green"\n[plugins.paint]\ncolour = "red"\n', {}, None,
                declaring(COLOUR), other)


def test_a_core_name_cannot_be_declared(tmp_path: Path) -> None:
    with pytest.raises(DuplicateNameError, match="'store'.*core setting"):
        resolve(tmp_path, "", {}, None, declaring(Setting("store", str, "x")))


def test_a_malformed_declaration_is_a_failed_plugin(tmp_path: Path) -> None:
    found = Plugins.from_plugins(declaring(Setting("Bad Name", str), name="bad_plugin"), declaring(COLOUR))
    settings = load(None, None, environ={}, plugins=found)
    assert [f.name for f in found.failed] == ["bad_plugin"] and "'Bad Name'" in found.failed[0].error
    assert settings.options["colour"] == "blue" and "Bad Name" not in settings.options


def test_the_bundled_plugins_keep_their_keys_env_vars_and_tables(tmp_path: Path) -> None:
    toml = ('haproxy_container = "lb"\nremote_url = "http://c:8080"\n'
            '[plugins.host]\nmaster_socket = "/run/m.sock"\n[plugins.remote]\nbackoff = 0.5\n')
    path = tmp_path / "cosmos.toml"
    path.write_text(toml)
    settings = load({"debounce_quiet": 0.3}, str(path), environ={"COSMOS_HAPROXY_CONFIG": "/etc/h.cfg"},
                    plugins=Plugins.discover())
    assert settings.options["haproxy_container"] == "lb" and settings.options["remote_url"] == "http://c:8080"
    assert settings.options["master_socket"] == "/run/m.sock" and settings.options["remote_backoff"] == 0.5
    assert settings.options["haproxy_config"] == "/etc/h.cfg" and settings.options["debounce_quiet"] == 0.3
    assert settings.events is None and settings.reloader is None  # cosmos watch picks docker / docker-exec
