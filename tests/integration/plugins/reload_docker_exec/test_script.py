"""The exec the docker-exec reloader runs, executed here by the host's sh and haproxy.

The script is the part of the reloader with logic in it (write, validate, keep
or install, reload); running it locally proves that logic without a container.
The reload command is always replaced by one that leaves a marker file: the
default (``kill -USR2 1``) is only meant for PID 1 inside the HAProxy container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cosmos_reload_docker_exec import reloader

from cosmos_core.bundle import Bundle

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
GOOD = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\nfrontend f\n    bind 127.0.0.1:18080\n"
BAD = GOOD + "    no-such-keyword here\n"

pytestmark = pytest.mark.skipif(
    not os.path.exists(HAPROXY) and os.environ.get("CI") != "true", reason="haproxy not installed on the host"
)


def run(job: reloader.Exec) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], **job.environment}
    return subprocess.run(job.argv, env=env, capture_output=True, text=True, check=False)


def test_valid_config_is_installed_then_reloaded(tmp_path: Path) -> None:
    live, marker = tmp_path / "haproxy.cfg", tmp_path / "reloaded"
    live.write_text("old\n")
    job = reloader.reload_exec(Bundle.of(GOOD), HAPROXY, str(live), f"cat {live} > {marker}")

    done = run(job)

    assert done.returncode == 0, done.stdout + done.stderr
    assert live.read_text() == GOOD
    assert marker.read_text() == GOOD  # the reload ran after the install
    assert sorted(p.name for p in tmp_path.iterdir()) == ["haproxy.cfg", "reloaded"]


def test_refused_config_keeps_the_live_file_and_reports_haproxys_error(tmp_path: Path) -> None:
    live, marker = tmp_path / "haproxy.cfg", tmp_path / "reloaded"
    live.write_text(GOOD)
    job = reloader.reload_exec(Bundle.of(BAD), HAPROXY, str(live), f"touch {marker}")

    done = run(job)

    assert done.returncode == reloader.EXIT_INVALID
    assert "no-such-keyword" in done.stdout
    assert live.read_text() == GOOD
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["haproxy.cfg"]  # the staging directory is gone


def test_failing_reload_command_has_its_own_exit_code(tmp_path: Path) -> None:
    live = tmp_path / "haproxy.cfg"
    done = run(reloader.reload_exec(Bundle.of(GOOD), HAPROXY, str(live), "echo cannot reload; false"))

    assert done.returncode == reloader.EXIT_RELOAD
    assert "cannot reload" in done.stdout
    assert live.read_text() == GOOD


def test_large_config_is_split_across_env_vars_and_reassembled(tmp_path: Path) -> None:
    live = tmp_path / "haproxy.cfg"
    big = GOOD + "".join(f"\nbackend b{i}\n    server s{i} 10.0.{i // 250}.{i % 250 + 1}:80\n" for i in range(8000))
    job = reloader.reload_exec(Bundle.of(big), HAPROXY, str(live), "true")

    assert len(job.environment) == -(-len(big) // reloader.CHUNK) > 2
    assert all(len(v) <= reloader.CHUNK for v in job.environment.values())
    assert run(job).returncode == 0
    assert live.read_text() == big


def test_paths_with_spaces_are_quoted(tmp_path: Path) -> None:
    live = tmp_path / "my dir" / "haproxy.cfg"
    live.parent.mkdir()
    assert run(reloader.reload_exec(Bundle.of(GOOD), HAPROXY, str(live), "true")).returncode == 0
    assert live.read_text() == GOOD


def test_default_reload_signals_pid_1() -> None:
    script = reloader.reload_exec(Bundle.of(GOOD), "haproxy", "/usr/local/etc/haproxy/haproxy.cfg", None).argv[2]
    assert "kill -USR2 1" in script


# HAProxy 2.6 resolves a map path against default-path in http-request rules, but not inside a
# use_backend %[...] expression (parsed after the config): look the map up in a variable first.
MAPPED = ("global\n    default-path config\n\n" + GOOD +
          "    http-request set-var(txn.backend) req.hdr(host),lower,map(maps/hosts.map,none)\n"
          "    use_backend %[var(txn.backend)]\n\nbackend web\n    server w 127.0.0.1:8081\n")


def files(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_bundle_is_validated_as_a_set_and_installed_with_its_aux_files(tmp_path: Path) -> None:
    live = tmp_path / "haproxy.cfg"
    first = Bundle.of(MAPPED, {"maps/hosts.map": b"a.test web\n", "maps/old.map": b"x\n"})
    assert run(reloader.reload_exec(first, HAPROXY, str(live), "true")).returncode == 0
    assert files(tmp_path) == {"haproxy.cfg": MAPPED, "maps/hosts.map": "a.test web\n", "maps/old.map": "x\n"}

    second = Bundle.of(MAPPED, {"maps/hosts.map": b"b.test web\n"})
    assert run(reloader.reload_exec(second, HAPROXY, str(live), "true", previous=first)).returncode == 0
    assert files(tmp_path) == {"haproxy.cfg": MAPPED, "maps/hosts.map": "b.test web\n"}  # old.map dropped


def test_a_refused_bundle_leaves_every_previous_file(tmp_path: Path) -> None:
    live, marker = tmp_path / "haproxy.cfg", tmp_path / "reloaded"
    good = Bundle.of(MAPPED, {"maps/hosts.map": b"a.test web\n"})
    run(reloader.reload_exec(good, HAPROXY, str(live), "true"))
    without_map = Bundle.of(MAPPED.replace("maps/hosts.map", "maps/missing.map"), {"maps/hosts.map": b"c.test web\n"})

    done = run(reloader.reload_exec(without_map, HAPROXY, str(live), f"touch {marker}", previous=good))

    assert done.returncode == reloader.EXIT_INVALID and "missing.map" in done.stdout
    assert files(tmp_path) == {"haproxy.cfg": MAPPED, "maps/hosts.map": "a.test web\n"}
    assert not marker.exists()


def test_a_failed_move_restores_the_files_already_moved(tmp_path: Path) -> None:
    live = tmp_path / "haproxy.cfg"
    good = Bundle.of(MAPPED, {"maps/hosts.map": b"a.test web\n"})
    run(reloader.reload_exec(good, HAPROXY, str(live), "true"))
    (tmp_path / "maps" / "z.map").mkdir()  # a directory where a file must go: its move fails
    (tmp_path / "maps" / "z.map" / "keep").write_text("")
    bundle = Bundle.of(MAPPED, {"maps/hosts.map": b"new web\n", "maps/z.map": b"z\n"})

    done = run(reloader.reload_exec(bundle, HAPROXY, str(live), "true"))

    assert done.returncode == reloader.EXIT_INSTALL
    assert (tmp_path / "maps" / "hosts.map").read_text() == "a.test web\n"
    assert live.read_text() == MAPPED and not (tmp_path / ".cosmos-stage").exists()


# check_bundle's exec: haproxy -c on a temporary copy, nothing live touched, the copy removed.
def test_the_check_exec_validates_a_bundle_in_a_temporary_directory_and_removes_it(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    bundle = Bundle.of(MAPPED, {"maps/hosts.map": b"web.test web\n"})
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(scratch)}

    def check(b: Bundle) -> subprocess.CompletedProcess[str]:
        job = reloader.check_exec(b, HAPROXY)
        return subprocess.run(job.argv, env=env | job.environment, capture_output=True, text=True, check=False)

    assert check(bundle).returncode == 0  # the map resolves against the copy (default-path config)
    without_map = check(Bundle.of(MAPPED))
    assert without_map.returncode == reloader.EXIT_INVALID and "hosts.map" in without_map.stdout
    refused = check(Bundle.of(MAPPED + "    no-such-keyword here\n", {"maps/hosts.map": b""}))
    assert refused.returncode == reloader.EXIT_INVALID and "no-such-keyword" in refused.stdout
    assert list(scratch.iterdir()) == []  # every copy removed

    job = reloader.check_exec(bundle, str(tmp_path / "no-haproxy"))
    missing = subprocess.run(job.argv, env=env | job.environment, capture_output=True, text=True, check=False)
    assert missing.returncode == reloader.EXIT_CHECK and list(scratch.iterdir()) == []


def test_private_key_files_are_staged_and_installed_with_mode_0600(tmp_path: Path) -> None:
    live = tmp_path / "haproxy.cfg"
    live.write_text("old\n")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "old.pem").write_text("old key\n")
    os.chmod(tmp_path / "certs" / "old.pem", 0o644)  # a live file with a loose mode is tightened too
    files = {"certs/a.pem": b"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
             "certs/old.pem": b"new key\n", "crt-list": b"certs/a.pem\n", "tls/b.key": b"k\n"}
    job = reloader.reload_exec(Bundle.of(GOOD, files), HAPROXY, str(live), "true")
    assert job.argv[2].count("umask 077") == 3  # every secret is written under umask 077, before any byte

    done = run(job)

    assert done.returncode == 0, done.stdout + done.stderr
    modes = {p: (tmp_path / p).stat().st_mode & 0o777 for p in files}
    assert modes == {"certs/a.pem": 0o600, "certs/old.pem": 0o600, "crt-list": 0o644, "tls/b.key": 0o600}
    assert (tmp_path / "certs" / "old.pem").read_text() == "new key\n"


def test_files_exec_writes_and_removes_auxiliary_files_without_a_check_or_reload(tmp_path: Path) -> None:
    live = tmp_path / "haproxy.cfg"
    live.write_text(GOOD)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "gone.pem").write_text("old\n")
    job = reloader.files_exec({"certs/new.pem": b"PEM\n", "crt-list": b"certs/new.pem\n", "certs/gone.pem": None},
                              str(live))

    done = run(job)

    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "certs" / "new.pem").read_text() == "PEM\n"
    assert (tmp_path / "certs" / "new.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "crt-list").read_text() == "certs/new.pem\n"
    assert not (tmp_path / "certs" / "gone.pem").exists()
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == ["new.pem"]  # no temporary file left
    assert live.read_text() == GOOD
