"""One bad service never blocks the rest (real ``haproxy -c``, host reloader, agent loop).

The "bad" service stands for anything HAProxy refuses in one service's lines (a
template or per-service option it cannot parse): here a user template writes an
unknown directive for services whose cookie is BROKEN.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cosmos_core import logs
from cosmos_core.agent import Agent
from cosmos_core.builtin.haproxy_emitter import DEFAULT_TEMPLATE
from cosmos_core.builtin.host_reloader import HostReloader
from cosmos_core.cli import app
from cosmos_core.model import Container, RunningContainer, Service, Snapshot
from cosmos_core.plugins import Plugins
from cosmos_core.runtime import Runtime
from cosmos_core.settings import Settings
from tests.unit.test_agent import ListSource


def snap(*services: tuple[str, str, str | None]) -> Snapshot:
    built = [Service(n, "host", p, cookie, 8080, (Container(f"c-{n}", "10.0.0.1"),)) for n, p, cookie in services]
    return Snapshot(None, tuple(RunningContainer(s.name, c) for s in built for c in s.containers), tuple(built))


def test_a_refused_service_is_kept_out_the_rest_routes_and_status_says_why(haproxy_bin, tmp_path, capsys) -> None:
    template = tmp_path / "t.cfg.j2"
    balance = "    balance {{ service.options.get('balance', 'roundrobin') }}\n"
    assert balance in DEFAULT_TEMPLATE.read_text()  # the anchor of the injected line (else the test proves nothing)
    template.write_text(DEFAULT_TEMPLATE.read_text().replace(
        balance, balance + "{% if service.cookie == 'BROKEN' %}\n    no-such-directive here\n{% endif %}\n"))
    store = f"sqlite://{tmp_path}/s.db"
    qfile = tmp_path / "quarantine.json"
    settings = Settings(store=store, template=str(template), quarantine_file=str(qfile), options={"haproxy_bin": haproxy_bin})
    runtime = Runtime(settings, Plugins.discover())
    live = tmp_path / "haproxy.cfg"
    live.write_text("")
    reloader = HostReloader(str(live), haproxy_bin, "true", None)
    logs.configure("json", "info")
    good = ("good1", "g1.example.com", None), ("good2", "g2.example.com", "SID")
    bad = ("bad", "bad.example.com", "BROKEN")
    source = ListSource([
        snap(*good, bad),
        snap(*good, bad, ("good3", "g3.example.com", None)),  # new services keep arriving
        snap(*good, ("bad", "bad.example.com", "FIXED"), ("good3", "g3.example.com", None)),  # it changed: retried
    ], then_block=False)
    agent = Agent(runtime, source, reloader)
    try:
        agent.run(once=True)
        config = live.read_text()
        assert "backend be_good1" in config and "backend be_good2" in config and "be_bad" not in config
        events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        quarantined = [e for e in events if e["event"] == "service_quarantined"]
        assert [e["service"] for e in quarantined] == ["bad"] and "no-such-directive" in quarantined[0]["reason"]
        assert agent.stats.failures == 0

        status = CliRunner().invoke(app, ["status", "--store", store],
                                    env={"COSMOS_QUARANTINE_FILE": str(qfile)})
        assert status.exit_code == 0, status.stderr
        lines = status.stdout.splitlines()
        flagged = lines[lines.index(next(l for l in lines if l.startswith("  bad "))) + 1]
        assert "NOT ROUTED" in flagged and "no-such-directive" in flagged
        as_json = json.loads(CliRunner().invoke(app, ["status", "--store", store, "--json"],
                                                env={"COSMOS_QUARANTINE_FILE": str(qfile)}).stdout)
        assert [s["name"] for s in as_json["tables"]["default"] if "quarantined" in s] == ["bad"]

        agent2 = Agent(runtime, ListSource(source.items[1:2], then_block=False), reloader)
        agent2._quarantines = agent._quarantines
        agent2.run()
        config = live.read_text()
        assert "backend be_good3" in config and "be_bad" not in config

        agent3 = Agent(runtime, ListSource(source.items[2:], then_block=False), reloader)
        agent3._quarantines = agent._quarantines
        agent3.run()
        config = live.read_text()
        assert "backend be_bad" in config and "cookie FIXED" in config
        assert json.loads(qfile.read_text()) == {store: {}}
    finally:
        runtime.close()


def test_a_refusal_no_service_explains_is_a_failed_pass(haproxy_bin, tmp_path) -> None:
    template = tmp_path / "t.cfg.j2"
    template.write_text(DEFAULT_TEMPLATE.read_text().replace("defaults\n", "defaults\n    no-such-directive\n"))
    settings = Settings(store=f"sqlite://{tmp_path}/s.db", template=str(template), options={"haproxy_bin": haproxy_bin},
                        quarantine_file=str(tmp_path / "q.json"))
    runtime = Runtime(settings, Plugins.discover())
    live = tmp_path / "haproxy.cfg"
    live.write_text("")
    try:
        agent = Agent(runtime, ListSource([snap(("a", "a.example.com", None))], then_block=False),
                      HostReloader(str(live), haproxy_bin, "true", None))
        agent.run(once=True)
        assert agent.stats.failures == 1 and live.read_text() == ""
        assert not Path(tmp_path / "q.json").exists()
    finally:
        runtime.close()
