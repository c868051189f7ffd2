"""The answer form for the original Cosmonaut client (issue 14), and a default config that needs no escaping.

``POST /cosmonaut`` answers the config as one JSON string built so that the
client's shell step (``grep error``, ``tr -d '"'``, unquoted ``echo -e``)
writes the config back byte for byte.  The shell step itself runs in bash here;
``tests/integration/serve/test_cosmonaut.py`` runs the whole client against a
real ``cosmos serve`` and HAProxy.
"""

from __future__ import annotations

import json
import string
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosmos_core import payload, pipeline
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.server.api import cosmonaut_string
from cosmos_core.settings import Settings
from cosmos_routing_host_path import plugin as routing

SEED = Path(__file__).parents[2] / "examples" / "seed-payload.json"

#: The client's steps after the POST, as in tests/support/cosmonaut_update.sh.
SHELL_STEPS = """
if grep -q error "$1"; then exit 1; fi
text=$(cat "$1")
unquoted=$(echo "$text" | tr -d '"')
echo -e ${unquoted} > "$2"
"""


def through_the_client(body: bytes, tmp_path: Path) -> str | None:
    """What the client writes as haproxy.cfg for ``body``; None when it stops on "error"."""
    answer, cfg = tmp_path / "answer", tmp_path / "haproxy.cfg"
    answer.write_bytes(body)
    done = subprocess.run(["bash", "-c", SHELL_STEPS, "bash", str(answer), str(cfg)], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, timeout=30, check=False)
    return None if done.returncode else cfg.read_text()


@given(st.text())
def test_the_json_string_decodes_to_the_config_exactly(text: str) -> None:
    body = cosmonaut_string(text)
    assert json.loads(body) == text
    inner = body.decode()[1:-1]
    assert '"' not in inner and "error" not in inner
    assert not set(inner) & set(string.whitespace + "*?[")


HOSTILE = [
    "plain",
    'quotes "inside" and \\backslashes\\ and \\n literal',
    "  indented\n\ttabs\n\n\nblank lines  \n   ",
    "error errors ERROR terror errorerror \x1errror e\\u0065rror",
    "glob * ? [a] [!x] ~ $HOME $(id) `id` ; & | < > # %",
    "ünïcödé ✓ \x7f \x01",
    "-n -e -E",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_the_client_writes_the_config_back_byte_for_byte(text: str, tmp_path: Path) -> None:
    assert through_the_client(cosmonaut_string(text), tmp_path) == text + "\n"


def test_the_client_stops_on_an_error_reply(tmp_path: Path) -> None:
    from cosmos_core.server.api import error_reply

    reply = error_reply(400, "candidateServices[0].predicate: must be ...", "candidateServices[0].predicate")
    assert through_the_client(reply.body, tmp_path) is None


# ------------------------------------------------------------------ the default template


def render(data: dict) -> str:
    runtime = Runtime(Settings(store="sqlite://:memory:"), Plugins.from_plugins(routing))
    try:
        return pipeline.generate(runtime, payload.parse(data)).config
    finally:
        runtime.close()


def clean(value: str) -> bool:
    return "error" not in value.lower()


names = st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True).filter(clean)
services = st.builds(
    lambda name, mode, host, path, cookie, port, ips: {
        "serviceName": name, "configMode": mode, "predicate": host if mode.lower() == "host" else path,
        "cookie": cookie, "port": port, "containers": [{"id": f"{name}-{i}", "ip": ip} for i, ip in enumerate(ips)]},
    names,
    st.sampled_from(["host", "Host", "path", "PATH"]),
    st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,3}", fullmatch=True).filter(clean),
    st.from_regex(r"/?[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,7}(/[A-Za-z0-9_~-]{1,8}){0,2}/?", fullmatch=True).filter(clean),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True).filter(clean)),
    st.integers(1, 65535),  # the service's port, for containers that give none
    st.lists(st.one_of(
        st.builds(lambda a, p: f"10.0.0.{a}:{p}", st.integers(1, 254), st.integers(1, 65535)),
        st.builds(lambda a: f"192.168.7.{a}", st.integers(1, 254)),
        st.sampled_from(["[fd00::1]:80", "[::1]", "db.internal:5432", "Web-1.Example.com:8080"]),
    ), max_size=4),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(services, max_size=6, unique_by=lambda s: s["serviceName"]))
def test_the_default_config_has_no_double_quote_and_no_error(candidates: list[dict]) -> None:
    config = render({"table": "t", "candidates": candidates})
    assert '"' not in config
    assert "error" not in config.lower()


def test_the_seed_and_an_empty_state_render_without_double_quotes_or_error() -> None:
    for data in (json.loads(SEED.read_text()), {"table": "empty"}):
        config = render(data)
        assert '"' not in config and "error" not in config.lower()
        assert "backend _no_match" in config
