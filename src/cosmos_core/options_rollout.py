"""Per-service options of issue 11 (enter when ready): an HAProxy-side HTTP health check.

* ``healthcheck`` (label ``cosmos.healthcheck``, payload ``healthcheck``): a path
  such as ``/healthz``; the backend gets ``option httpchk GET <path>`` and a
  server takes traffic only once it answers 2xx/3xx there.
* ``healthcheck_interval`` (label ``cosmos.healthcheck-interval``, payload
  ``healthcheckInterval``): seconds between checks, 0.1-3600 (HAProxy's
  default, 2 s, when not set).
"""

from __future__ import annotations

import math
import re
from typing import Any

from cosmos_core import options as opts
from cosmos_core.errors import ValidationError

_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,255}$")


def check_path(value: Any, field: str) -> str:
    """An absolute URL path without spaces, quotes or control characters."""
    if not isinstance(value, str) or not _PATH.match(value) or "'" in value:
        raise ValidationError(field, value, "must be an absolute path such as /healthz (no spaces or quotes)")
    return value


def check_interval(value: Any, field: str) -> float:
    """Seconds, 0.1-3600, as a number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValidationError(field, value, "must be a number of seconds (0.1-3600)") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or not 0.1 <= seconds <= 3600:
        raise ValidationError(field, value, "must be a number of seconds (0.1-3600)")
    return seconds


HEALTHCHECK = opts.service_option("healthcheck", "healthcheck", "healthcheck", check_path,
                                  "HTTP path HAProxy checks before a container takes traffic")
HEALTHCHECK_INTERVAL = opts.service_option("healthcheck_interval", "healthcheck-interval", "healthcheckInterval",
                                           check_interval, "seconds between HAProxy's health checks")
