"""Per-service HTTPS options (issue 12): ``https`` policy and ``hsts`` max-age.

* ``https`` (label ``cosmos.https``, payload ``https``): ``off`` (HTTP only),
  ``on`` (HTTP and HTTPS, the default when HTTPS is enabled) or ``redirect``
  (HTTP answers 308 to the same path and query on HTTPS).
* ``hsts`` (label ``cosmos.hsts``, payload ``hsts``): HSTS ``max-age`` in
  seconds sent on HTTPS responses (0..63072000; 0 or unset sends none).
"""

from __future__ import annotations

from typing import Any

from cosmos_core.errors import ValidationError
from cosmos_core.options import service_option

POLICIES = ("off", "on", "redirect")
HSTS_MAX = 63_072_000  # two years, the longest max-age the preload list asks for


def check_policy(value: Any, field: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in POLICIES:
        raise ValidationError(field, value, "must be off, on or redirect")
    return text


def check_hsts(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise ValidationError(field, value, f"must be a whole number of seconds, 0-{HSTS_MAX}")
    try:
        number = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValidationError(field, value, f"must be a whole number of seconds, 0-{HSTS_MAX}") from None
    if isinstance(value, float) and value != number or not 0 <= number <= HSTS_MAX:
        raise ValidationError(field, value, f"must be a whole number of seconds, 0-{HSTS_MAX}")
    return number


HTTPS = service_option("https", "https", "https", check_policy, "off | on | redirect (HTTP -> HTTPS, 308)")
HSTS = service_option("hsts", "hsts", "hsts", check_hsts, "HSTS max-age in seconds on HTTPS responses")
