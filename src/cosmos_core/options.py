"""Per-service and per-container options: one declaration, every way in and out.

An option (a load-balancing algorithm, a server weight, a health-check path...)
is declared once as an :class:`OptionSpec`: its key in the model and the
template (``timeout_server``), its Docker label (``cosmos.timeout-server``), its
payload field in both dialects (``timeoutServer``) and a check that turns a raw
value into a safe, normalised one or raises
:class:`~cosmos_core.errors.ValidationError`.  From that single row:

* the payload parser reads the field on a candidate (service options) or on a
  container / running entry (container options);
* the Docker source reads the label;
* the stores persist every option as one JSON text (``options``), so a new
  option needs no schema change;
* the template sees ``service.options`` / ``server.options`` as a dict.

Values are JSON scalars (str, int, float, bool) or tuples of them; an option
that is not set is absent (never ``None``).  :data:`Options` is the frozen,
sorted ``((key, value), ...)`` form the model stores, so services stay
hashable and comparable.

Register options with :func:`service_option` / :func:`container_option` at
import time of the module that owns them; :mod:`cosmos_core.options_builtin`
imports the built-in ones.

An *internal* option has no label and no payload field (``label=None``,
``payload=None``): Cosmos itself sets it (reconcile's grace bookkeeping), the
stores keep it and templates see it, but no label or payload can set it.  A
rule (:func:`options_rule`) checks options that belong together, such as a
user name and its password hash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cosmos_core.errors import ValidationError

Value = Any  # str | int | float | bool | tuple[str | int | float | bool, ...]
Options = tuple[tuple[str, Value], ...]
Check = Callable[[Any, str], Value]  # (raw value, field path for errors) -> normalised value

LABEL_PREFIX = "cosmos."


@dataclass(frozen=True)
class OptionSpec:
    """One option.  ``check(raw, field)`` returns the normalised value or raises ValidationError."""

    key: str
    label: str | None
    payload: str | None
    check: Check
    help: str = ""

    @property
    def label_name(self) -> str:
        """The full Docker label, e.g. ``cosmos.timeout-server``."""
        return LABEL_PREFIX + self.label if self.label else ""


SERVICE_OPTIONS: dict[str, OptionSpec] = {}
CONTAINER_OPTIONS: dict[str, OptionSpec] = {}


def _register(registry: dict[str, OptionSpec], spec: OptionSpec) -> OptionSpec:
    for other in (*SERVICE_OPTIONS.values(), *CONTAINER_OPTIONS.values()):
        if other is spec:
            return spec
        if spec.key == other.key or (spec.label and spec.label == other.label) or (
                spec.payload and spec.payload == other.payload):
            raise ValueError(f"option {spec.key!r} clashes with option {other.key!r}")
    registry[spec.key] = spec
    return spec


def service_option(key: str, label: str | None, payload: str | None, check: Check, help: str = "") -> OptionSpec:
    """Declare a per-service option (set on a candidate / by a service's newest container)."""
    return _register(SERVICE_OPTIONS, OptionSpec(key, label, payload, check, help))


def container_option(key: str, label: str | None, payload: str | None, check: Check, help: str = "") -> OptionSpec:
    """Declare a per-container (per-server) option."""
    return _register(CONTAINER_OPTIONS, OptionSpec(key, label, payload, check, help))


def freeze(values: Mapping[str, Value]) -> Options:
    """The model's form: sorted pairs, lists as tuples."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


def as_dict(options: Options) -> dict[str, Value]:
    return dict(options)


def from_payload(item: Mapping[str, Any], specs: Mapping[str, OptionSpec], path: str) -> Options:
    """The options a payload object sets, each checked; errors name ``path.field``."""
    found: dict[str, Value] = {}
    def where(spec: OptionSpec) -> str:
        return f"{path}.{spec.payload}" if path else str(spec.payload)

    for spec in specs.values():
        if spec.payload and spec.payload in item and item[spec.payload] is not None:
            found[spec.key] = spec.check(item[spec.payload], where(spec))
    _apply_rules(found, specs, where)
    return freeze(found)


def from_labels(labels: Mapping[str, str], specs: Mapping[str, OptionSpec]) -> Options:
    """The options a container's labels set, each checked; errors name the label."""
    found: dict[str, Value] = {}
    for spec in specs.values():
        raw = labels.get(spec.label_name) if spec.label else None
        if raw is not None and raw != "":
            found[spec.key] = spec.check(raw, spec.label_name)
    _apply_rules(found, specs, lambda spec: spec.label_name)
    return freeze(found)


def to_payload(options: Options, specs: Mapping[str, OptionSpec]) -> dict[str, Value]:
    """``{payloadField: value}`` for :func:`cosmos_core.payload.dump`."""
    return {str(specs[k].payload): list(v) if isinstance(v, tuple) else v
            for k, v in options if k in specs and specs[k].payload}


def encode(options: Options) -> str | None:
    """Deterministic JSON text for a store, or ``None`` when no option is set."""
    if not options:
        return None
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in options}, sort_keys=True,
                      separators=(",", ":"))


def decode(text: str | None, specs: Mapping[str, OptionSpec], where: str) -> Options:
    """Options read back from a store, re-checked; an unknown key is refused.

    Raises ValidationError naming ``where`` (the row or item).
    """
    if not text:
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        raise ValidationError(f"{where}.options", text, "is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{where}.options", text, "must be a JSON object")
    found: dict[str, Value] = {}
    for key, raw in data.items():
        spec = specs.get(key)
        if spec is None:
            raise ValidationError(f"{where}.options.{key}", raw, "is not a known option (written by a newer Cosmos?)")
        found[key] = spec.check(raw, f"{where}.options.{key}")
    _apply_rules(found, specs, lambda spec: f"{where}.options.{spec.key}")
    return freeze(found)


#: ``rule(values, field_of)``: ``values`` maps option keys to checked values;
#: ``field_of(key)`` names a key's field (payload path or label) for the error.
Rule = Callable[[Mapping[str, Value], Callable[[str], str]], None]
RULES: list[Rule] = []


def options_rule(rule: Rule) -> Rule:
    """Register a check across options (raise ValidationError naming ``field_of(key)``); a decorator."""
    if rule not in RULES:
        RULES.append(rule)
    return rule


def _apply_rules(found: Mapping[str, Value], specs: Mapping[str, OptionSpec],
                 where: Callable[[OptionSpec], str]) -> None:
    for rule in RULES:
        rule(found, lambda key: where(specs[key]) if key in specs else key)


def names(specs: Iterable[OptionSpec]) -> list[str]:
    return sorted(spec.key for spec in specs)
