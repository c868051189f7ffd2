"""The model validates itself: any Service/Container that exists is safe to render."""

from __future__ import annotations

import pytest

from cosmos_core.errors import ValidationError
from cosmos_core.model import Container, Service
from cosmos_core.validate import check_host, check_port, split_address


@pytest.mark.parametrize("value, expected", [
    ("10.0.0.1:80", ("10.0.0.1", 80)),
    ("10.0.0.1", ("10.0.0.1", None)),
    ("db.internal:5432", ("db.internal", 5432)),
    ("[fd00::1]:443", ("fd00::1", 443)),
    ("[fd00::1]", ("fd00::1", None)),
    ("Web-1.Example.COM", ("web-1.example.com", None)),
])
def test_split_address(value, expected) -> None:
    assert split_address(value) == expected


@pytest.mark.parametrize("value", ["", "host:", "a:b:c", "-bad.example.com", "a..b", "1.2.3.4:99999", "x y", "[::1]x"])
def test_split_address_refuses(value) -> None:
    with pytest.raises(ValidationError):
        split_address(value)


@pytest.mark.parametrize("value, expected", [(80, 80), ("443", 443), (None, None), ("", None)])
def test_check_port(value, expected) -> None:
    assert check_port(value) == expected


@pytest.mark.parametrize("value", [0, 65536, "８０", "80a", 1.5, True, -1])
def test_check_port_refuses(value) -> None:
    with pytest.raises(ValidationError):
        check_port(value)


def test_check_host_refuses_unicode_and_whitespace() -> None:
    for value in ["exämple.com", "a.com\n", "a .com", "fe80::1%eth0", "fe80::1%a\nb"]:
        with pytest.raises(ValidationError):
            check_host(value)


def test_service_sorts_and_deduplicates_containers() -> None:
    service = Service("app", "host", "a.example.com", None, 80,
                      (Container("b", "10.0.0.2"), Container("a", "10.0.0.1"), Container("b", "10.0.0.3")))
    assert [(c.id, c.host) for c in service.containers] == [("a", "10.0.0.1"), ("b", "10.0.0.3")]


def test_service_needs_a_port_for_each_container() -> None:
    with pytest.raises(ValidationError) as info:
        Service("app", "host", "a.example.com", None, None, (Container("a", "10.0.0.1"),))
    assert info.value.field == "containers[0].ip"


@pytest.mark.parametrize("field, value", [
    ("name", "bad name"), ("name", "_reserved"), ("mode", "HO ST"), ("predicate", "a#b"),
    ("predicate", "a'b"), ("predicate", "${X}"), ("cookie", "a=b"), ("port", 0),
])
def test_service_refuses_unsafe_values(field, value) -> None:
    kwargs = {"name": "app", "mode": "host", "predicate": "a.example.com", "cookie": None, "port": 80}
    kwargs[field] = value
    with pytest.raises(ValidationError):
        Service(**kwargs)


def test_container_refuses_bad_id() -> None:
    with pytest.raises(ValidationError) as info:
        Container("id with space", "10.0.0.1", 80)
    assert info.value.field == "id"
