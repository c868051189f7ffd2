"""The grace period of a service whose last container went away (``cosmos.grace``): pure functions.

Without a grace period a service with no running container is deleted at
once and its route disappears (HAProxy answers 404).  With ``grace = N``
seconds, reconcile keeps it for N seconds with no containers, and the template
answers 503 with a short page, so clients and monitors can tell "down" from
"unknown".  The time it became empty is data: the internal service option
``empty_since`` (Unix seconds), set from :attr:`Snapshot.at
<cosmos_core.model.Snapshot.at>`, stored like every option, and dropped when a
container comes back.  Reconcile never reads a clock; whoever runs passes
(the agent) asks :func:`next_expiry` when to run the next one.
"""

from __future__ import annotations

from collections.abc import Iterable

from cosmos_core.model import Service

GRACE, EMPTY_SINCE = "grace", "empty_since"


def hold(service: Service, now: float | None) -> Service | None:
    """``service`` kept with no containers while its grace lasts at ``now``; ``None`` once it ends.

    ``now`` is Unix seconds; ``None`` (no time known) or no grace means no hold.
    """
    options = dict(service.options)
    grace = options.get(GRACE, 0)
    if now is None or not grace:
        return None
    since = options.get(EMPTY_SINCE)
    if since is None:
        return service.derive(containers=(), options=tuple(sorted({**options, EMPTY_SINCE: round(now, 3)}.items())))
    if now < since + grace:
        return service if not service.containers else service.derive(containers=())
    return None


def revive(service: Service) -> Service:
    """``service`` without its ``empty_since`` mark (a container is running again)."""
    if not any(key == EMPTY_SINCE for key, _ in service.options):
        return service
    return service.derive(options=tuple((k, v) for k, v in service.options if k != EMPTY_SINCE))


def next_expiry(services: Iterable[Service]) -> float | None:
    """The earliest Unix time at which a held service's grace ends (``None``: none held)."""
    ends = []
    for service in services:
        options = dict(service.options)
        if EMPTY_SINCE in options and options.get(GRACE):
            ends.append(options[EMPTY_SINCE] + options[GRACE])
    return min(ends, default=None)
