"""The docker-exec reloader's ``check_bundle``: the exec it builds (pure) and how it reads the answer.

A fake container stands in for Docker; the script itself runs under the host's
``sh`` and ``haproxy`` in ``tests/integration/plugins/reload_docker_exec/test_script.py``
and inside a real HAProxy container in ``tests/integration/agent/test_quarantine_docker_exec.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from cosmos_reload_docker_exec import reloader as rx
from cosmos_reload_docker_exec.reloader import DockerExecReloader, check_exec

from cosmos_core.bundle import Bundle
from cosmos_core.errors import ReloadError
from cosmos_core.settings import Settings
from tests.plugins.reload_docker_exec.test_runtime_path import Client, Result

CFG = "global\n    default-path config\ndefaults\n    mode http\n"
LIVE = "/usr/local/etc/haproxy/haproxy.cfg"


def test_the_exec_writes_every_file_under_a_temporary_directory_and_runs_haproxy_c_there() -> None:
    bundle = Bundle.of(CFG, {"maps/hosts.map": b"a.example.com be_a\n"})

    job = check_exec(bundle, "/opt/haproxy/sbin/haproxy")

    assert job.argv[:2] == ["sh", "-c"] and len(job.argv) == 3
    script = job.argv[2]
    assert job.environment == {"COSMOS_AUX0_0": "a.example.com be_a\n", "COSMOS_CFG_0": CFG}
    assert 't=$(mktemp -d "${TMPDIR:-/tmp}/cosmos-check.XXXXXX")' in script
    assert "trap 'rm -rf \"$t\"' EXIT" in script  # removed whatever the outcome
    assert '"$t"/maps/hosts.map' in script and "\"$COSMOS_AUX0_0\" > \"$t\"/maps/hosts.map" in script
    assert "/opt/haproxy/sbin/haproxy -c -f \"$t\"/haproxy.cfg" in script
    assert f"exit {rx.EXIT_INVALID}" in script and f"exit {rx.EXIT_CHECK}" in script
    # Nothing live: no config path, no staging beside it, no reload, no runtime API.
    for live in (LIVE, "/usr/local/etc", rx.STAGE, "kill", "USR2", "nc ", "mv "):
        assert live not in script


def test_a_large_main_file_travels_in_several_chunks_and_a_binary_file_is_refused() -> None:
    big = CFG + "#" * (2 * rx.CHUNK)
    job = check_exec(Bundle.of(big), "haproxy")
    assert sorted(job.environment) == ["COSMOS_CFG_0", "COSMOS_CFG_1", "COSMOS_CFG_2"]
    assert '"$COSMOS_CFG_0" "$COSMOS_CFG_1" "$COSMOS_CFG_2"' in job.argv[2]
    assert "".join(job.environment[k] for k in sorted(job.environment)) == big

    with pytest.raises(ReloadError, match="certs/x.pem"):
        check_exec(Bundle.of(CFG, {"certs/x.pem": b"\0"}), "haproxy")


@dataclass
class FakeContainer:
    answer: Result
    status: str = "running"
    execs: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)

    def exec_run(self, argv: list[str], environment: dict[str, str] | None = None, **_: Any) -> Result:
        self.execs.append((argv, environment or {}))
        return self.answer


def reloader_answering(exit_code: int, output: str) -> tuple[DockerExecReloader, FakeContainer]:
    container = FakeContainer(Result(exit_code, output.encode()))
    reloader = DockerExecReloader(Settings(options={"haproxy_container": "hx", "haproxy_bin": "/usr/sbin/haproxy"}))
    reloader._client = Client(container)  # noqa: SLF001 - no Docker here
    return reloader, container


def test_check_bundle_returns_none_when_valid_with_one_exec_and_remembers_nothing() -> None:
    reloader, container = reloader_answering(0, "Configuration file is valid\n")
    bundle = Bundle.of(CFG)

    assert reloader.check_bundle(bundle) is None
    assert [argv for argv, _ in container.execs] == [check_exec(bundle, "/usr/sbin/haproxy").argv]
    assert reloader._applied is None  # noqa: SLF001 - a check is not an apply


def test_check_bundle_returns_haproxys_reason_as_the_host_check_does() -> None:
    output = ("[NOTICE]   (12) : haproxy version is 2.6.12\n"
              "[ALERT]    (12) : config : parsing [/tmp/cosmos-check.ab/haproxy.cfg:9] : unknown keyword "
              "'no-such-directive' in 'backend' section\n"
              "[ALERT]    (12) : config : Error(s) found in configuration file : /tmp/cosmos-check.ab/haproxy.cfg\n"
              "[ALERT]    (12) : config : Fatal errors found in configuration.\n")
    reloader, _ = reloader_answering(rx.EXIT_INVALID, output)

    reason = reloader.check_bundle(Bundle.of(CFG))

    assert reason is not None and reason.startswith("config : parsing [") and "'no-such-directive'" in reason
    assert "\n" not in reason and "ALERT" not in reason


def test_a_file_the_exec_cannot_carry_is_a_reason_not_a_crash() -> None:
    reloader, container = reloader_answering(0, "")
    assert "certs/x.pem" in str(reloader.check_bundle(Bundle.of(CFG, {"certs/x.pem": b"\xff"})))
    assert container.execs == []


@pytest.mark.parametrize("exit_code", [rx.EXIT_CHECK, rx.EXIT_INSTALL, 137])
def test_a_check_that_cannot_run_raises(exit_code: int) -> None:
    reloader, _ = reloader_answering(exit_code, "sh: /usr/sbin/haproxy: not found\n")
    with pytest.raises(ReloadError, match=r"haproxy -c in container 'hx' could not run .*not found"):
        reloader.check_bundle(Bundle.of(CFG))


def test_a_stopped_container_raises() -> None:
    reloader, container = reloader_answering(0, "")
    container.status = "exited"
    with pytest.raises(ReloadError, match="'hx' is exited"):
        reloader.check_bundle(Bundle.of(CFG))
