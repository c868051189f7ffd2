"""Settings precedence: flags > COSMOS_* env > cosmos.toml > defaults."""

from __future__ import annotations

import pytest

from cosmos_core.errors import ValidationError
from cosmos_core.settings import Settings, default_store_url, load


def write(tmp_path, text: str):
    path = tmp_path / "cosmos.toml"
    path.write_text(text)
    return str(path)


def test_defaults(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    settings = load(environ={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert settings.store == f"sqlite://{tmp_path}/state/cosmos/cosmos.db" == default_store_url()
    assert settings.emitter == "haproxy" and settings.table == "default"


def test_precedence(tmp_path) -> None:
    path = write(tmp_path, 'store = "sqlite:///from-file"\ntable = "file"\nbind = ":8080"\n')
    env = {"COSMOS_STORE": "sqlite:///from-env", "COSMOS_TABLE": "env"}
    settings = load({"store": "sqlite:///from-flag", "table": None}, path, environ=env)
    assert settings.store == "sqlite:///from-flag"   # flag beats env and file
    assert settings.table == "env"                    # env beats file
    assert settings.bind == ":8080"                   # file beats default


def test_cosmos_toml_in_the_working_directory_is_read(tmp_path, monkeypatch) -> None:
    write(tmp_path, 'store = "dynamodb://t"\n[plugins.host]\nmaster_socket = "/run/haproxy-master.sock"\n')
    monkeypatch.chdir(tmp_path)
    settings = load(environ={})
    assert settings.store == "dynamodb://t"
    assert settings.options["master_socket"] == "/run/haproxy-master.sock"
    assert settings.options["reload_command"] is None


def test_types_are_coerced_from_env(tmp_path) -> None:
    settings = load(environ={"COSMOS_SERVE_PORT": "9000", "COSMOS_DEBUG": "yes", "COSMOS_DEBOUNCE_QUIET": "0.5"},
                    config_path=write(tmp_path, ""))
    assert (settings.serve_port, settings.debug, settings.debounce_quiet) == (9000, True, 0.5)


@pytest.mark.parametrize("text, field", [
    ('stroe = "x"\n', "stroe"), ('serve_port = "abc"\n', "serve_port"), ("store = [\n", "cosmos.toml"),
    ('table = ["x", "y"]\n', "table"), ('table = "bad table"\n', "table"), ("debounce_quiet = nan\n", "debounce_quiet"),
    ("store = 3\n", "store"),
])
def test_bad_file_names_the_key(tmp_path, text, field) -> None:
    with pytest.raises(ValidationError) as info:
        load(config_path=write(tmp_path, text), environ={})
    assert field in str(info.value)


def test_bad_env_names_the_variable(tmp_path) -> None:
    with pytest.raises(ValidationError) as info:
        load(config_path=write(tmp_path, ""), environ={"COSMOS_SERVE_PORT": "eighty"})
    assert info.value.field == "COSMOS_SERVE_PORT"


def test_missing_explicit_config_file_is_an_error(tmp_path) -> None:
    with pytest.raises(ValidationError):
        load(config_path=str(tmp_path / "nope.toml"), environ={})


def test_settings_are_frozen() -> None:
    with pytest.raises(Exception):
        Settings().store = "x"  # type: ignore[misc]
