"""The docker-exec reloader's runtime path: server-only changes without a reload, fallbacks otherwise.

A fake container answers the execs the way HAProxy and the script would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cosmos_reload_docker_exec.reloader import DockerExecReloader

from cosmos_core.bundle import Bundle
from cosmos_core.contracts import ReloadOutcome
from cosmos_core.settings import Settings

HEAD = "global\n    stats socket ipv4@127.0.0.1:9999 level admin\ndefaults\n    mode http\n"
STATE_HEADER = ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
                "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
                "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n")


def config(*servers: str, extra: str = "") -> str:
    lines = [HEAD + "backend web", "    balance roundrobin"]
    lines += [f"    server {s} 10.0.0.{i + 1}:8080 check" for i, s in enumerate(servers)]
    lines += [f"    server cosmos-spare-{i} 0.0.0.0:1 disabled check" for i in (1, 2)]
    return "\n".join(lines) + "\n" + extra


@dataclass
class Result:
    exit_code: int
    output: bytes


@dataclass
class FakeContainer:
    id: str = "c0"
    status: str = "running"
    attrs: dict[str, Any] = field(default_factory=lambda: {"State": {"StartedAt": "t0"}})
    execs: list[str] = field(default_factory=list)
    refuse: bool = False

    def get_archive(self, path: str) -> Any:
        import docker.errors

        raise docker.errors.NotFound("no live file yet")

    def exec_run(self, argv: list[str], environment: dict[str, str] | None = None, **_: Any) -> Result:
        env = environment or {}
        line = env.get("COSMOS_CMDS", "")
        if "COSMOS_CFG_0" in env and line:
            self.execs.append("runtime")
        elif line:
            self.execs.append("query")
        else:
            self.execs.append("reload")
            return Result(0, b"")
        answers = []
        for command in line.split(";"):
            if command.startswith("show servers state"):
                answers.append(STATE_HEADER + "1 web 1 a1 10.0.0.1 2 0 1 1 5 6 3 4 6 0 0 0 - 8080\n"
                               "1 web 2 cosmos-spare-1 0.0.0.0 0 5 1 1 5 6 3 4 6 0 0 0 - 1\n"
                               "1 web 3 cosmos-spare-2 0.0.0.0 0 5 1 1 5 6 3 4 6 0 0 0 - 1\n")
            elif command.startswith("show env"):
                answers.append("Variable not found\n")
            elif command.startswith("set server") and "addr" in command:
                answers.append("No such server.\n" if self.refuse else "IP changed from '0.0.0.0' to '10.0.0.2'\n")
            elif command.startswith("set server"):
                answers.append("\n")
        return Result(0, "\n".join(answers).encode())


class Client:
    def __init__(self, container: FakeContainer) -> None:
        self.containers = self
        self.container = container

    lookups = 0

    def get(self, name: str) -> FakeContainer:
        self.lookups += 1
        return self.container


class Applier:
    """``reload(config)``: the reloader's ``apply`` with the previous bundle, as the agent calls it."""

    def __init__(self, reloader: DockerExecReloader) -> None:
        self.reloader = reloader
        self.previous: Bundle | None = None

    def reload(self, config: str) -> ReloadOutcome:
        bundle = Bundle.of(config)
        outcome = self.reloader.apply(bundle, self.previous)
        self.previous = bundle
        return outcome


def reloader_for(container: FakeContainer, runtime_api: str | None = "ipv4@127.0.0.1:9999") -> Applier:
    reloader = DockerExecReloader(Settings(runtime_api=runtime_api))
    reloader._client = Client(container)  # noqa: SLF001 - no Docker here
    return Applier(reloader)


def test_a_new_container_of_an_existing_service_goes_through_the_runtime_api() -> None:
    container = FakeContainer()
    reloader = reloader_for(container)
    assert reloader.reload(config("a1")).reloaded

    outcome = reloader.reload(config("a1", "b2"))

    assert not outcome.reloaded and "runtime API" in outcome.reason
    assert container.execs == ["reload", "runtime"]  # right after its own reload the servers are known: no query
    assert not reloader.reload(config("a1", "b2")).reloaded  # unchanged now: nothing at all
    assert container.execs == ["reload", "runtime"]


def test_the_next_change_uses_the_remembered_servers_one_exec() -> None:
    container = FakeContainer()
    reloader = reloader_for(container)
    reloader.reload(config("a1"))
    reloader.reload(config("a1", "b2"))
    reloader.reload(config("b2"))  # a1 leaves: set maint, from the remembered state
    assert container.execs == ["reload", "runtime", "runtime"]


def test_structural_changes_refused_commands_and_no_runtime_api_reload() -> None:
    container = FakeContainer()
    reloader = reloader_for(container)
    reloader.reload(config("a1"))
    assert reloader.reload(config("a1", extra="backend other\n")).reloaded  # structural: no query at all
    assert container.execs == ["reload", "reload"]

    refusing = FakeContainer(refuse=True)
    reloader = reloader_for(refusing)
    reloader.reload(config("a1"))
    assert reloader.reload(config("a1", "b2")).reloaded  # HAProxy refused a command: reload instead
    assert refusing.execs == ["reload", "runtime", "reload"]

    plain = FakeContainer()
    reloader = reloader_for(plain, runtime_api="off")
    reloader.reload(config("a1"))
    assert reloader.reload(config("a1", "b2")).reloaded
    assert plain.execs == ["reload", "reload"]


def test_the_haproxy_container_is_looked_up_once_per_apply() -> None:
    """Each lookup is an inspect call on the way to a reload: one per apply, whatever the path."""
    container = FakeContainer()
    applier = reloader_for(container)
    client = applier.reloader._client  # noqa: SLF001
    applier.reload(config("a1"))
    assert client.lookups == 1
    applier.reload(config("a1", "b2"))  # runtime path
    applier.reload(config("a1", "b2", extra="backend other\n"))  # structural: a reload
    assert client.lookups == 3
    assert container.execs == ["reload", "runtime", "reload"]


@dataclass
class LiveContainer(FakeContainer):
    """Its config file already holds ``live`` (a fresh agent next to a running HAProxy)."""

    live: str = ""

    def get_archive(self, path: str) -> Any:
        import io
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = self.live.encode()
            info = tarfile.TarInfo("haproxy.cfg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return [buf.getvalue()], {}


def test_servers_a_reloader_did_not_start_itself_are_asked_for_once() -> None:
    """Right after its own reload a reloader knows the servers (those the config starts); when it found the
    config already live (no reload of its own), it asks HAProxy (`show servers state`) once."""
    container = LiveContainer(live=config("a1"))
    reloader = reloader_for(container)
    assert not reloader.reload(config("a1")).reloaded  # already live
    assert not reloader.reload(config("a1", "b2")).reloaded
    assert container.execs == ["query", "runtime"]
    assert not reloader.reload(config("b2")).reloaded
    assert container.execs == ["query", "runtime", "runtime"]
