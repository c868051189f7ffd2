"""Parsing the master CLI's ``show proc`` and the transports an address names (pure)."""

from __future__ import annotations

import pytest

from cosmos_core.haproxy.runtime_api import DockerExec, TcpSocket, UnixSocket, parse_proc, transport_for, worker_report

SHOW_PROC = """#<PID>          <type>          <reloads>       <uptime>        <version>
1               master          2 [failed: 0]   0d00h03m12s     2.6.12-1+deb12u1
# workers
41              worker          0               0d00h00m03s     2.6.12-1+deb12u1
# old workers
33              worker          1               0d00h01m10s     2.6.12-1+deb12u1
27              worker          2               0d00h03m12s     2.6.12-1+deb12u1
# programs

"""


def test_show_proc_tells_the_current_worker_from_the_old_ones() -> None:
    procs = parse_proc(SHOW_PROC)
    assert [(p.pid, p.kind, p.reloads, p.old) for p in procs] == [
        (1, "master", 2, False), (41, "worker", 0, False), (33, "worker", 1, True), (27, "worker", 2, True)]
    assert worker_report(procs) == {"workers": 3, "current": 1, "old": 2, "pids": [41, 33, 27]}


def test_an_address_names_its_transport() -> None:
    assert transport_for("/run/haproxy/master.sock") == UnixSocket("/run/haproxy/master.sock")
    assert transport_for("ipv4@127.0.0.1:9998") == TcpSocket("127.0.0.1", 9998)
    container = object()
    assert transport_for("ipv4@127.0.0.1:9998", container) == DockerExec(container, 9998, "127.0.0.1")
    with pytest.raises(ValueError, match="nc"):
        transport_for("/run/haproxy/master.sock", container)
    with pytest.raises(ValueError, match="ipv4@HOST:PORT"):
        transport_for("localhost:9998")
