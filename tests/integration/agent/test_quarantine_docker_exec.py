"""One bad service never blocks the rest, with HAProxy in a container and no ``haproxy`` on the host.

`cosmos watch --reloader docker-exec` (the default deployment) runs with a
PATH that holds no ``haproxy``, so the only way it can find the service HAProxy
refuses is the reloader's own check: ``haproxy -c`` on a temporary copy inside
the HAProxy container.  The refusal comes from a user template (``COSMOS_TEMPLATE``)
that writes an unknown directive for the service named ``bad`` only: input that
Cosmos accepts and HAProxy does not.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from cosmos_core.builtin.haproxy_emitter import DEFAULT_TEMPLATE
from tests.integration.agent.conftest import COSMOS, ROOT, Agent, Env, url, wait_routed
from tests.support.images import http_get

MakeAgent = Callable[..., Agent]
BALANCE = "    balance {{ service.options.get('balance', 'roundrobin') }}\n"


def test_a_refused_service_is_found_inside_the_container_and_the_rest_keeps_routing(
        env: Env, make_agent: MakeAgent, tmp_path: Path) -> None:
    template = tmp_path / "t.cfg.j2"
    default = DEFAULT_TEMPLATE.read_text()
    assert BALANCE in default
    template.write_text(default.replace(
        BALANCE, BALANCE + "{% if service.name == 'bad' %}\n    no-such-directive here\n{% endif %}\n"))
    no_haproxy = tmp_path / "bin"  # the agent's whole PATH: no haproxy binary on it
    no_haproxy.mkdir()
    assert shutil.which("haproxy", path=str(no_haproxy)) is None
    proxy = env.haproxy()
    env.backend("good1", service="good1", predicate="good1.test", port="8080")
    env.backend("bad", service="bad", predicate="bad.test", port="8080")

    agent = make_agent("--reloader", "docker-exec",
                       variables={"PATH": str(no_haproxy), "COSMOS_TEMPLATE": str(template)})

    assert agent.wait_event("quarantine_check")[0]["by"] == "reloader"  # the container's check, not the host's
    assert wait_routed(url(proxy), "good1.test") == f"{env.prefix}-good1\n"
    quarantined = agent.wait_event("service_quarantined")
    assert [q["service"] for q in quarantined] == ["bad"] and "no-such-directive" in quarantined[0]["reason"]
    assert http_get(url(proxy), {"Host": "bad.test"}).status == 404

    env.backend("good2", service="good2", predicate="good2.test", port="8080")  # new services keep arriving

    assert wait_routed(url(proxy), "good2.test") == f"{env.prefix}-good2\n"
    assert http_get(url(proxy), {"Host": "good1.test"}).body == f"{env.prefix}-good1\n"
    assert http_get(url(proxy), {"Host": "bad.test"}).status == 404
    assert len(agent.events("service_quarantined")) == 1  # kept out, not bisected again
    live = proxy.exec_run(["cat", "/usr/local/etc/haproxy/haproxy.cfg"]).output.decode()
    assert "no-such-directive" not in live and "good2" in live
    leftovers = proxy.exec_run(["sh", "-c", "ls -a /tmp /usr/local/etc/haproxy"]).output.decode()
    assert "cosmos-check" not in leftovers and ".cosmos-stage" not in leftovers  # every check copy removed

    status = subprocess.run([*COSMOS, "status", "--store", agent.argv[agent.argv.index("--store") + 1]],
                            env={**agent.env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=False)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    bad = next(i for i, line in enumerate(lines) if line.startswith("  bad "))
    assert "NOT ROUTED" in lines[bad + 1] and "no-such-directive" in lines[bad + 1], status.stdout
    assert not any("NOT ROUTED" in line for i, line in enumerate(lines) if i != bad + 1)
    assert agent.stop() == 0
    assert agent.events("agent_stopped")[-1]["failures"] == 0
