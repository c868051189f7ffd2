"""The item layout: pure functions, no DynamoDB."""

from __future__ import annotations

import pytest
from cosmos_storage_dynamodb import layout
from cosmos_storage_dynamodb.store import Location

from cosmos_core.contracts import StoreURL
from cosmos_core.errors import ValidationError
from cosmos_core.model import Container, Service
from cosmos_core.reconcile import diff


def svc(name: str, *ids: str, predicate: str = "a.example.com", port: int | None = 80) -> Service:
    return Service(name, "host", predicate, "SID", port, tuple(Container(i, "10.0.0.1") for i in ids))


def sks(items: list[layout.Item]) -> list[str]:
    return [item["sk"]["S"] for item in items]


def test_adding_one_container_puts_one_item() -> None:
    ops = layout.write_ops("ns", diff({"a": svc("a", "1")}, {"a": svc("a", "1", "2")}), 7)
    assert sks(ops.puts) == ["ctr#a#2"] and ops.container_deletes == ops.service_deletes == []
    assert ops.puts[0]["at"] == {"N": "7"} and ops.puts[0]["owner"] == {"S": layout.SHARED_OWNER}


def test_settings_change_puts_only_the_service_item() -> None:
    ops = layout.write_ops("ns", diff({"a": svc("a", "1")}, {"a": svc("a", "1", predicate="b.example.com")}), 2)
    assert sks(ops.puts) == ["svc#a"] and ops.items == 1


def test_order_service_items_then_containers_then_deletes() -> None:
    before = {"gone": svc("gone", "g1", "g2"), "kept": svc("kept", "k1", "k2")}
    after = {"kept": svc("kept", "k1", "k3"), "new": svc("new", "n1")}
    ops = layout.write_ops("ns", diff(before, after), 3)
    assert sks(ops.puts) == ["svc#new", "ctr#kept#k3", "ctr#new#n1"]
    assert sks(ops.container_deletes) == ["ctr#gone#g1", "ctr#gone#g2", "ctr#kept#k2"]
    assert sks(ops.service_deletes) == ["svc#gone"]


def test_moved_container_is_overwritten_not_deleted() -> None:
    moved = Service("a", "host", "a.example.com", "SID", 80, (Container("1", "10.0.0.9", 81),))
    ops = layout.write_ops("ns", diff({"a": svc("a", "1")}, {"a": moved}), 2)
    assert sks(ops.puts) == ["ctr#a#1"] and not ops.container_deletes


def test_decode_round_trips_write_ops() -> None:
    services = {
        "a": Service("a", "path", "/x", None, None, (Container("1", "2001:db8::1", 8080),)),
        "b": svc("b", "1", "2"),
    }
    ops = layout.write_ops("ns", diff({}, services), 1)
    decoded = layout.decode(ops.puts + [{**layout.revision_key("ns"), "rev": {"N": "1"}}])
    assert decoded.services == services and decoded.revision == 1 and decoded.skipped == ()


def test_decode_skips_orphans_and_portless_containers_instead_of_failing() -> None:
    """What an interrupted run can leave behind must not block the next load."""
    ops = layout.write_ops("ns", diff({}, {"a": svc("a", "1"), "b": svc("b", "2")}), 1)
    items = [i for i in ops.puts if i["sk"]["S"] != "svc#b"]  # b's service item never landed
    portless = layout.container_item("ns", "c", Container("3", "10.0.0.3"), 1)
    items += [layout.service_item("ns", svc("c", port=None), 1), portless]
    decoded = layout.decode(items)
    assert sorted(decoded.services) == ["a", "c"] and decoded.services["c"].containers == ()
    assert decoded.skipped == ("ctr#b#2", "ctr#c#3") and decoded.revision == 0


@pytest.mark.parametrize(
    ("attribute", "value"), [("predicate", {"S": "has space"}), ("port", {"N": "x"}), ("mode", None)]
)
def test_decode_names_the_item_with_a_bad_value(attribute: str, value: dict | None) -> None:
    item = layout.service_item("ns", svc("a"), 1)
    if value is None:
        del item[attribute]
    else:
        item[attribute] = value
    with pytest.raises(ValidationError) as info:
        layout.decode([item])
    assert info.value.field.startswith("item svc#a")


@pytest.mark.parametrize(
    ("url", "table", "region", "endpoint", "attempts"),
    [
        ("dynamodb://", None, None, None, 5),
        ("dynamodb://cosmos", "cosmos", None, None, 5),
        ("dynamodb://t.x-1?region=eu-west-1&endpoint=http://127.0.0.1:8000&max_attempts=9",
         "t.x-1", "eu-west-1", "http://127.0.0.1:8000", 9),
    ],
)
def test_location_parse(url: str, table: str | None, region: str | None, endpoint: str | None, attempts: int) -> None:
    location = Location.parse(StoreURL.parse(url))
    assert (location.table, location.region, location.endpoint, location.max_attempts) == (
        table, region, endpoint, attempts,
    )
    assert location.physical("astro") == (table or "astro")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("dynamodb://ab", "3-255 characters"),
        ("dynamodb://bad/name", "3-255 characters"),
        ("dynamodb://cosmos?regoin=x", "unknown option 'regoin'"),
        ("dynamodb://cosmos?max_attempts=0", "max_attempts"),
        ("dynamodb://cosmos?endpoint=localhost:8000", "endpoint must start with http"),
    ],
)
def test_location_refuses_bad_urls_naming_the_store_field(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        Location.parse(StoreURL.parse(url))
    assert info.value.field == "store" and reason in str(info.value) and info.value.exit_code == 2


def test_bare_url_refuses_a_namespace_dynamodb_cannot_name() -> None:
    location = Location.parse(StoreURL.parse("dynamodb://"))
    with pytest.raises(ValidationError) as info:
        location.physical("ab")
    assert info.value.field == "tableName" and info.value.exit_code == 2
    assert Location.parse(StoreURL.parse("dynamodb://cosmos")).physical("ab") == "cosmos"
