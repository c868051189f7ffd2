"""The framework-free HTTP contract (cosmos_core.server.api), in-process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from cosmos_core import payload, pipeline
from cosmos_core.errors import StoreError, ValidationError
from cosmos_core.runtime import Runtime
from cosmos_core.server import api as api_module
from cosmos_core.server.api import (
    Api,
    TableLocks,
    bearer_ok,
    declared_length_over,
    failure_reply,
    json_media_type,
    route_error,
)
from cosmos_core.settings import Settings
from cosmos_core.status import collect

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-payload.json"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(store=f"sqlite://{tmp_path / 'state.db'}")


@pytest.fixture
def api(settings: Settings) -> Any:
    service = Api(settings)
    yield service
    service.close()


@pytest.mark.parametrize(
    ("expected", "header", "ok"),
    [
        (None, None, True),
        ("", "anything", True),
        ("tok", "Bearer tok", True),
        ("tok", "bearer tok", True),
        ("tok", "  Bearer   tok  ", True),
        ("tok", None, False),
        ("tok", "", False),
        ("tok", "Bearer", False),
        ("tok", "Bearer tokx", False),
        ("tok", "Bearer to", False),
        ("tok", "Basic tok", False),
        ("tok", "tok", False),
        ("tøk", "Bearer tøk", True),
    ],
)
def test_bearer_ok(expected: str | None, header: str | None, ok: bool) -> None:
    assert bearer_ok(expected, header) is ok


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = api_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api_module.hmac, "compare_digest", spy)
    assert not bearer_ok("secret", "Bearer wrong")
    assert not bearer_ok("secret", "Basic secret")
    assert calls == [(b"wrong", b"secret"), (b"", b"secret")]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/vnd.cosmos+json", True),
        (None, False),
        ("", False),
        ("text/plain", False),
        ("text/json", False),
        ("application/x-www-form-urlencoded", False),
    ],
)
def test_json_media_type(value: str | None, ok: bool) -> None:
    assert json_media_type(value) is ok


def test_route_error() -> None:
    assert route_error("POST", "/generate") is None
    assert route_error("GET", "/healthz") is None
    assert route_error("HEAD", "/status") is None
    assert route_error("GET", "/x").status == 404  # type: ignore[union-attr]
    wrong = route_error("GET", "/generate")
    assert wrong is not None and wrong.status == 405 and wrong.headers["Allow"] == "POST"


def test_declared_length_over() -> None:
    assert declared_length_over("11", 10)
    assert not declared_length_over("10", 10)
    assert not declared_length_over(None, 10)
    assert not declared_length_over("junk", 10)


def test_table_locks_map_one_table_to_one_lock_with_bounded_memory() -> None:
    locks = TableLocks(stripes=4)
    assert locks("astro") is locks("astro")
    assert len({id(locks(f"t{i}")) for i in range(100)}) <= 4


def test_generate_returns_the_pipeline_config_and_stores(api: Api, tmp_path: Path) -> None:
    reply = api.generate(SEED.read_bytes())
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain")
    other = Runtime(Settings(store=f"sqlite://{tmp_path / 'other.db'}"))
    other.emitter.use_maps = False  # the answer is one text file: the stand-alone (ACL) form, no map files
    try:
        expected = pipeline.generate(other, payload.loads(SEED.read_bytes())).config
    finally:
        other.close()
    assert reply.body.decode() == expected
    status = api.status()
    assert status.status == 200
    with api.pool.borrow() as runtime:
        assert json.loads(status.body) == collect(runtime)
    assert sorted(json.loads(status.body)["tables"]) == ["astro"]


def test_a_bad_payload_is_400_and_stores_nothing(api: Api) -> None:
    reply = api.generate(b'{"tableName": "t", "runningServices": [{"serviceName": "a b"}]}')
    assert reply.status == 400
    assert json.loads(reply.body)["field"] == "runningServices[0].serviceName"
    assert json.loads(api.status().body)["tables"] == {}


def test_a_store_that_cannot_open_is_503(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    service = Api(Settings(store=f"sqlite://{blocker / 'state.db'}"))
    try:
        service.check()  # building the store does not contact it
        for reply in (service.healthz(), service.generate(SEED.read_bytes()), service.status()):
            assert reply.status == 503
            assert "store" in json.loads(reply.body)["error"]
    finally:
        service.close()


def test_an_unexpected_exception_is_a_500_without_details() -> None:
    reply = failure_reply(KeyError("secret internals"))
    assert reply.status == 500
    assert "secret" not in reply.body.decode()
    assert failure_reply(StoreError("down")).status == 503


def test_check_refuses_an_unknown_store_scheme() -> None:
    from cosmos_core.errors import UnknownNameError

    service = Api(Settings(store="nosuch://x"))
    with pytest.raises(UnknownNameError):
        service.check()


def test_the_pool_lends_one_runtime_per_thread_and_closes_them(api: Api) -> None:
    inside = threading.Barrier(3)
    seen: list[int] = []

    def borrow() -> None:
        with api.pool.borrow() as runtime:
            seen.append(id(runtime))
            inside.wait(5)

    threads = [threading.Thread(target=borrow) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(set(seen)) == 3
    with api.pool.borrow() as runtime:
        assert id(runtime) in seen  # reused, not rebuilt
        runtime.store.ping()
        store = runtime.store
    api.pool.close()
    assert store._conn is None  # type: ignore[attr-defined]


def test_the_cli_start_up_path_imports_no_server_stack() -> None:
    code = (
        "import sys; import cosmos_core.cli; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'anyio')); "
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_serving_beyond_loopback_without_a_token_is_flagged() -> None:
    from cosmos_core.cli.serve import exposed_without_token

    assert exposed_without_token("0.0.0.0", None)
    assert exposed_without_token("::", None)
    assert exposed_without_token("cosmos.internal", None)
    assert not exposed_without_token("0.0.0.0", "token")
    assert not exposed_without_token("127.0.0.1", None)
    assert not exposed_without_token("::1", None)
    assert not exposed_without_token("[::1]", None)
    assert not exposed_without_token("localhost", None)


def test_the_listening_socket_lets_asyncio_disable_nagle() -> None:
    """Without TCP_NODELAY, Nagle + delayed ACKs add ~40 ms to every response."""
    import socket

    from cosmos_core.cli.serve import listen

    sock = listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP  # asyncio only sets TCP_NODELAY on such sockets
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        client = socket.create_connection(sock.getsockname()[:2])
        accepted, _ = sock.accept()
        with client, accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # inherited on Linux
    finally:
        sock.close()


def test_listen_refuses_a_bad_port_and_a_taken_one() -> None:
    import socket

    from cosmos_core.cli.serve import ServeError, listen

    with pytest.raises(ValidationError):
        listen("127.0.0.1", 70000)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(ServeError, match="cannot listen"):
            listen("127.0.0.1", taken.getsockname()[1])


def test_an_unknown_payload_field_is_400_naming_it_and_stores_nothing(api: Api) -> None:
    body = json.loads(SEED.read_bytes())
    body["candidateServices"][0]["predicat"] = "typo.example.com"
    reply = api.generate(json.dumps(body).encode())
    assert reply.status == 400
    assert json.loads(reply.body)["field"] == "candidateServices[0].predicat"
    assert json.loads(api.status().body)["tables"] == {}


def test_a_key_given_twice_is_400_naming_it_and_stores_nothing(api: Api) -> None:
    body = SEED.read_bytes().decode()
    doubled = body.replace('"candidateServices"', '"candidateServices": [], "candidateServices"', 1)
    reply = api.generate(doubled.encode())
    assert reply.status == 400
    assert json.loads(reply.body)["field"] == "candidateServices"
    assert json.loads(api.status().body)["tables"] == {}
