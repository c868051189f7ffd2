"""Parse an original Cosmos request (either dialect) into a :class:`Snapshot`.

Dialects:

* 2016: ``tableName`` / ``runningServices`` / ``candidateServices``, ports inside
  ``ip`` as ``host:port``;
* later: ``table`` / ``running`` / ``candidates``, with an optional ``port`` field.

Both take an optional top-level ``host``: the fleet host id that reports the
snapshot (see :class:`~cosmos_core.model.Snapshot`).  When given it must be a
host id (1-128 characters); ``""`` and ``null`` are refused, since a payload
without ``host`` is the whole truth for its table.

Every error is a :class:`ValidationError` whose field is the JSON path in the
payload, e.g. ``candidateServices[1].containers[0].ip``.

Unknown fields are refused, not ignored (a misspelled ``predicat`` would lose
the predicate silently): the error names the field's path and its value.  The
known fields are the ones above, plus each option declared in
:mod:`cosmos_core.options` (its camelCase ``payload`` name), on the object
that option belongs to.  A container's ``address`` is an alias of ``ip`` (both
given must agree).  A key given twice in one JSON object is refused too (JSON
decoders keep the last one silently).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Iterable

from cosmos_core import options as opts
from cosmos_core.errors import ValidationError
from cosmos_core.model import (
    Container,
    RunningContainer,
    Service,
    Snapshot,
)
from cosmos_core.validate import (
    check_cookie,
    check_host_id,
    check_mode,
    check_name,
    check_port,
    check_predicate,
    split_address,
)

#: Fields each payload object may carry (besides the declared options): both dialects.
_TOP_FIELDS = frozenset({"tableName", "table", "runningServices", "running", "candidateServices", "candidates", "host"})
_CONTAINER_FIELDS = frozenset({"id", "ip", "address", "port"})
_RUNNING_FIELDS = _CONTAINER_FIELDS | {"serviceName"}
_CANDIDATE_FIELDS = frozenset({"serviceName", "configMode", "predicate", "cookie", "port", "containers"})

_ALIASES = {
    "table": ("tableName", "table"),
    "running": ("runningServices", "running"),
    "candidates": ("candidateServices", "candidates"),
}


def loads(text: str | bytes) -> Snapshot:
    """Parse JSON text into a snapshot.

    Raises :class:`ValidationError` for text that is not JSON, for a payload
    that :func:`parse` refuses, and for JSON nested too deeply to decode or
    compare (field ``payload``): deep nesting is bad input at any depth, never
    a crash.
    """
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except ValidationError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("payload", _excerpt(text), f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise _too_deep(text) from None
    try:
        return parse(data)
    except RecursionError:  # comparing or showing a deeply nested value
        raise _too_deep(text) from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key given twice in one object is refused (JSON parsers keep the last silently)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValidationError(key, value, "is given twice in one JSON object (the first value would be lost); "
                                              "give it once")
        data[key] = value
    return data


def _too_deep(text: str | bytes) -> ValidationError:
    return ValidationError("payload", _excerpt(text), "is nested too deeply (a payload needs 5 levels)")


def parse(data: Any) -> Snapshot:
    """Validate a decoded payload and build the snapshot."""
    _expect(isinstance(data, dict), "payload", data, "must be a JSON object")
    _known_only(data, _TOP_FIELDS, {}, "")
    table_key, table = _pick(data, "table")
    if table is not None:
        check_name(table, table_key)
    running_key, running = _pick(data, "running")
    candidates_key, candidates = _pick(data, "candidates")
    return Snapshot(
        table=table,
        running=tuple(_running(running_key, running)),
        candidates=tuple(_merge_candidates(candidates_key, candidates)),
        candidates_key=candidates_key,
        host_id=check_host_id(data["host"], "host") if "host" in data else None,  # "" / null refused
    )


def _pick(data: dict[str, Any], canonical: str) -> tuple[str, Any]:
    """The value under either dialect's key; both present and different is an error."""
    old, new = _ALIASES[canonical]
    if old in data and new in data and data[old] != data[new]:
        raise ValidationError(new, data[new], f"conflicts with {old!r}; give only one")
    key = old if old in data else new
    return key, data.get(key)


def _items(key: str, value: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    if value is None:
        return
    _expect(isinstance(value, list), key, value, "must be a list")
    for index, item in enumerate(value):
        path = f"{key}[{index}]"
        _expect(isinstance(item, dict), path, item, "must be an object")
        yield path, item


def _container(path: str, item: dict[str, Any], fields: frozenset[str] = _CONTAINER_FIELDS) -> Container:
    """A container from ``{id, ip[, port]}``; a separate ``port`` must agree with ``ip``'s."""
    _known_only(item, fields, opts.CONTAINER_OPTIONS, path)
    if "ip" in item and "address" in item and item["ip"] != item["address"]:
        raise ValidationError(f"{path}.address", item["address"], "conflicts with 'ip' (an alias); give only one")
    ip_key = "address" if "address" in item and "ip" not in item else "ip"  # ``address``: an alias of ``ip``
    ip = item.get(ip_key)
    host, ip_port = split_address(ip, f"{path}.{ip_key}")
    port = check_port(item.get("port"), f"{path}.port")
    if ip_port is not None and port is not None and ip_port != port:
        raise ValidationError(f"{path}.port", item.get("port"), f"disagrees with the port in {ip_key} {ip!r}")
    options = opts.from_payload(item, opts.CONTAINER_OPTIONS, path)
    try:
        return Container(id=item.get("id"), host=host, port=ip_port if ip_port is not None else port, options=options)
    except ValidationError as exc:
        raise exc.within(path) from None


def _running(key: str, value: Any) -> Iterable[RunningContainer]:
    for path, item in _items(key, value):
        name = check_name(item.get("serviceName"), f"{path}.serviceName")
        yield RunningContainer(service=name, container=_container(path, item, _RUNNING_FIELDS))


def _candidate_container(service: str, path: str, item: dict[str, Any]) -> Container:
    """A candidate's container; a running entry copied as-is (with its ``serviceName``) is accepted
    when that name is the candidate's own, and refused, naming the field, when it is another."""
    if "serviceName" not in item:
        return _container(path, item)
    if item["serviceName"] != service:
        raise ValidationError(f"{path}.serviceName", item["serviceName"],
                              f"names another service than its candidate {service!r}")
    return _container(path, item, _RUNNING_FIELDS)


def _candidate(path: str, item: dict[str, Any]) -> Service:
    _known_only(item, _CANDIDATE_FIELDS, opts.SERVICE_OPTIONS, path)
    name = check_name(item.get("serviceName"), f"{path}.serviceName")
    mode = check_mode(item.get("configMode"), f"{path}.configMode")
    predicate = check_predicate(item.get("predicate"), f"{path}.predicate")
    cookie = check_cookie(item.get("cookie"), f"{path}.cookie")
    port = check_port(item.get("port"), f"{path}.port")
    options = opts.from_payload(item, opts.SERVICE_OPTIONS, path)
    containers = [_candidate_container(name, cpath, citem)
                  for cpath, citem in _items(f"{path}.containers", item.get("containers", []))]
    # No port is inferred from the containers (the 2016 dialect puts it in each ip):
    # a candidate without ``port`` keeps the stored service port (reconcile rule 3).
    try:
        return Service(name, mode, predicate, cookie, port, tuple(containers), options)
    except ValidationError as exc:
        raise exc.within(path) from None


def _merge_candidates(key: str, value: Any) -> Iterable[Service]:
    """Candidates in payload order; repeats of one service merge their containers."""
    merged: dict[str, tuple[str, Service]] = {}
    for path, item in _items(key, value):
        service = _candidate(path, item)
        if service.name in merged:
            first_path, first = merged[service.name]
            if not first.same_settings(service):
                raise ValidationError(
                    path, service.name, f"settings conflict with {first_path} for the same service"
                )
            # Later containers win on equal ids, as in reconcile.
            containers = {c.id: c for c in first.containers + service.containers}
            service = replace(first, containers=tuple(containers.values()))
            path = first_path
        merged[service.name] = (path, service)
    return (service for _, service in merged.values())


def _known_only(item: dict[str, Any], fields: frozenset[str], specs: dict[str, opts.OptionSpec], path: str) -> None:
    """Refuse the first field (in payload order) that is neither in ``fields`` nor a declared option of ``specs``."""
    for name, value in item.items():
        if name in fields or any(spec.payload == name for spec in specs.values()):
            continue
        where = f"{path}.{name}" if path else str(name)
        known = sorted(fields | {str(spec.payload) for spec in specs.values() if spec.payload})
        raise ValidationError(where, value, f"unknown field (known here: {', '.join(known)})")


def _expect(ok: bool, field_name: str, value: Any, reason: str) -> None:
    if not ok:
        raise ValidationError(field_name, value, reason)


def _excerpt(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[:40]


def dump(snapshot: Snapshot) -> dict[str, Any]:
    """The payload (later dialect) that :func:`parse` turns back into ``snapshot``.

    Used to send a snapshot to a remote Cosmos.  Each container's port goes in
    its own ``port`` field, so IPv6 hosts need no brackets; unset values
    (``table``, ``host``, ``cookie``, ``port``) are left out.  The round trip is exact
    for every snapshot :func:`parse` builds (a candidate without a port but
    with containers would come back with its first container's port, as
    :func:`parse` infers it).
    """
    data: dict[str, Any] = {}
    if snapshot.table is not None:
        data["table"] = snapshot.table
    if snapshot.host_id is not None:
        data["host"] = snapshot.host_id
    data["running"] = [
        {"serviceName": entry.service, **_dump_container(entry.container)} for entry in snapshot.running
    ]
    data["candidates"] = [_dump_service(service) for service in snapshot.candidates]
    return data


def dumps(snapshot: Snapshot) -> bytes:
    """:func:`dump` as compact UTF-8 JSON."""
    return json.dumps(dump(snapshot), separators=(",", ":")).encode()


def _dump_container(container: Container) -> dict[str, Any]:
    item: dict[str, Any] = {"id": container.id, "ip": container.host}
    if container.port is not None:
        item["port"] = container.port
    item.update(opts.to_payload(container.options, opts.CONTAINER_OPTIONS))
    return item


def _dump_service(service: Service) -> dict[str, Any]:
    item: dict[str, Any] = {"serviceName": service.name, "configMode": service.mode, "predicate": service.predicate}
    if service.cookie is not None:
        item["cookie"] = service.cookie
    if service.port is not None:
        item["port"] = service.port
    item.update(opts.to_payload(service.options, opts.SERVICE_OPTIONS))
    item["containers"] = [_dump_container(c) for c in service.containers]
    return item
