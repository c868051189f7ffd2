"""The ``path`` service option: a path prefix added to a ``host`` rule (host + path routing).

Payload field ``path`` (both dialects), label ``cosmos.path``.  ``app.example.com`` with
path ``/api`` routes ``app.example.com/api`` and ``app.example.com/api/...``; the rest of
that host goes to a service that claims the host alone, if any.  A path of ``/`` is no
path (the whole host).  Only the ``host`` mode takes a path; other modes refuse it.
"""

from __future__ import annotations

import re
from typing import Any

from cosmos_core.errors import ValidationError
from cosmos_core.options import service_option

_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
SEGMENT_RULE = ("must be a URL path of segments made of letters, digits, '.', '_', '~', '-' "
                "(no empty, '.' or '..' segments)")


def normalize_path(value: str) -> str:
    """``api/v2/`` -> ``/api/v2``; ``/`` stays ``/``.  Raises ``ValueError(reason)``."""
    segments = value.strip().strip("/").split("/")
    if segments == [""]:
        return "/"
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise ValueError(SEGMENT_RULE)
    return "/" + "/".join(segments)


def _check_path(raw: Any, field: str) -> str:
    if not isinstance(raw, str) or len(raw) > 255:
        raise ValidationError(field, raw, "must be a path prefix such as /api (at most 255 characters)")
    try:
        return normalize_path(raw)
    except ValueError as exc:
        raise ValidationError(field, raw, str(exc)) from None


PATH = service_option("path", "path", "path", _check_path,
                      "path prefix of a host rule: host + path routing (host mode only)")
