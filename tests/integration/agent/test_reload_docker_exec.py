"""The docker-exec reloader against a real HAProxy container."""

from __future__ import annotations

import pytest
from cosmos_reload_docker_exec.reloader import DockerExecReloader

from cosmos_core.bundle import Bundle
from cosmos_core.errors import ReloadError
from cosmos_core.settings import Settings
from tests.integration.agent.conftest import Env, url
from tests.support.images import HAPROXY_CFG, http_get, wait_for_log, wait_http


def config(body: str) -> str:
    return (
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\n"
        f'frontend http\n    bind :80\n    http-request return status 200 content-type text/plain string "{body}"\n'
    )


def live(proxy) -> str:  # type: ignore[no-untyped-def]
    return proxy.exec_run(["cat", HAPROXY_CFG]).output.decode()


def test_reload_applies_skips_unchanged_and_keeps_serving_on_a_refused_config(env: Env) -> None:
    proxy = env.haproxy()
    reloader = DockerExecReloader(Settings(options={"haproxy_container": proxy.name}))

    assert reloader.apply(Bundle.of(config("one")), None).reloaded
    wait_http(url(proxy), expect_status=200)
    wait_for_log(proxy, "Loading success", count=2)
    assert http_get(url(proxy)).body == "one"
    again = reloader.apply(Bundle.of(config("one")), None)
    assert not again.reloaded and "unchanged" in again.reason

    with pytest.raises(ReloadError, match="no-such-keyword"):
        reloader.apply(Bundle.of(config("two") + "    no-such-keyword\n"), None)

    assert live(proxy) == config("one")
    assert http_get(url(proxy)).body == "one"
    assert proxy.logs().decode().count("Loading success") == 2
    assert proxy.exec_run(["ls", "/usr/local/etc/haproxy"]).output.decode().split() == ["haproxy.cfg"]
    assert reloader.apply(Bundle.of(config("three")), None).reloaded  # the refused config was not remembered
    wait_for_log(proxy, "Loading success", count=3)
    assert http_get(url(proxy)).body == "three"


def test_a_fresh_reloader_skips_a_config_that_is_already_live(env: Env) -> None:
    proxy = env.haproxy()
    DockerExecReloader(Settings(options={"haproxy_container": proxy.name})).apply(Bundle.of(config("one")), None)

    outcome = DockerExecReloader(Settings(options={"haproxy_container": proxy.name})).apply(Bundle.of(config("one")), None)

    assert not outcome.reloaded and "already live" in outcome.reason


def test_a_restarted_container_gets_the_config_again(env: Env) -> None:
    proxy = env.haproxy()
    reloader = DockerExecReloader(Settings(options={"haproxy_container": proxy.name}))
    reloader.apply(Bundle.of(config("one")), None)
    proxy.restart(timeout=1)
    proxy.exec_run(["sh", "-c", f"printf 'defaults\\n  mode http\\n' > {HAPROXY_CFG}"])  # someone replaced it

    assert reloader.apply(Bundle.of(config("one")), None).reloaded  # a new incarnation: compared with the live file again
    assert live(proxy) == config("one")


def test_custom_reload_command(env: Env) -> None:
    proxy = env.haproxy()
    reloader = DockerExecReloader(
        Settings(options={"haproxy_container": proxy.name, "reload_command": "touch /tmp/custom-reload && kill -USR2 1"})
    )

    assert reloader.apply(Bundle.of(config("custom")), None).reloaded

    wait_for_log(proxy, "Loading success", count=2)
    assert proxy.exec_run(["ls", "/tmp/custom-reload"]).exit_code == 0
    assert http_get(url(proxy)).body == "custom"


def test_a_failed_reload_is_done_again_on_the_next_call(env: Env) -> None:
    proxy = env.haproxy()
    command = "test -f /tmp/ok || { touch /tmp/ok; exit 1; }; kill -USR2 1"
    reloader = DockerExecReloader(Settings(options={"haproxy_container": proxy.name, "reload_command": command}))

    with pytest.raises(ReloadError, match="reload failed") as failed:
        reloader.apply(Bundle.of(config("late")), None)
    assert failed.value.retryable and live(proxy) == config("late")  # installed, not loaded

    assert reloader.apply(Bundle.of(config("late")), None).reloaded
    wait_for_log(proxy, "Loading success", count=2)
    assert http_get(url(proxy)).body == "late"


def test_missing_container_is_a_clear_error(env: Env) -> None:
    reloader = DockerExecReloader(Settings(options={"haproxy_container": f"{env.prefix}-nowhere"}))

    with pytest.raises(ReloadError, match=f"{env.prefix}-nowhere.*not found.*retry"):
        reloader.apply(Bundle.of(config("x")), None)


def test_changes_run_through_one_long_lived_session_and_a_broken_one_falls_back(env: Env) -> None:
    """Each script used to cost a `docker exec` (its set-up most of a change's latency): now one session
    `sh` runs them all; when it breaks, that change runs with a plain exec and the next opens a new session."""
    proxy = env.haproxy()
    reloader = DockerExecReloader(Settings(options={"haproxy_container": proxy.name}))

    assert reloader.apply(Bundle.of(config("one")), None).reloaded
    api = reloader._docker().api  # noqa: SLF001
    created: list[object] = []
    real_create = api.exec_create
    api.exec_create = lambda *a, **k: created.append(a) or real_create(*a, **k)  # count the execs Docker sets up
    for count, body in enumerate(("two", "three", "four"), start=3):
        assert reloader.apply(Bundle.of(config(body)), None).reloaded
        wait_for_log(proxy, "Loading success", count=count)
        assert http_get(url(proxy)).body == body
    assert created == []  # three changes, no new exec

    reloader._session._sock.close()  # noqa: SLF001 - the session breaks (a restarted container, a dropped stream)
    assert reloader.apply(Bundle.of(config("five")), None).reloaded
    wait_for_log(proxy, "Loading success", count=6)
    assert http_get(url(proxy)).body == "five"
    assert reloader.apply(Bundle.of(config("six")), None).reloaded
    wait_for_log(proxy, "Loading success", count=7)
    assert http_get(url(proxy)).body == "six" and reloader._session is not None  # noqa: SLF001


def test_back_to_back_reloads_are_all_applied(env: Env) -> None:
    """A SIGUSR2 that reaches the master while it still re-executes itself for the previous reload is
    lost; the reload waits for the new worker (and signals again), so each change is live when it returns."""
    import time

    proxy = env.haproxy()
    reloader = DockerExecReloader(Settings(options={"haproxy_container": proxy.name}))
    for n in range(6):
        assert reloader.apply(Bundle.of(config(f"v{n}")), None).reloaded
    wait_for_log(proxy, "Loading success", count=7)  # the start and six reloads
    deadline = time.monotonic() + 10
    while http_get(url(proxy)).body != "v5":
        assert time.monotonic() < deadline, "the last config is not served"
        time.sleep(0.05)
