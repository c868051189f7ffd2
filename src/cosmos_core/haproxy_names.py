"""HAProxy names derived from service names, so that no service name can be misread.

A service may be called anything :func:`cosmos_core.model.check_name` accepts
(``or``, ``OR``, ``TRUE``, ``METH_GET``, ``http``, ``default_backend``...).  Used
bare, such a name would be read by HAProxy as an ACL operator (``or``), a
predefined ACL (``TRUE``), or share the frontend's name (``http``).  Every name
Cosmos places in the config therefore carries a fixed prefix that no HAProxy
keyword, operator, predefined ACL, the frontend (``http``) or the fallback
backend (``_no_match``) starts with:

* backend of service ``NAME``: ``be_NAME``
* ACL of service ``NAME`` (routes for templates that use ACLs): ``acl_NAME``

Both are pure functions of the service name; proxy and ACL names are
case-sensitive in HAProxy, as service names are.
"""

from __future__ import annotations

BACKEND_PREFIX = "be_"
ACL_PREFIX = "acl_"


def backend_name(service: str) -> str:
    """The HAProxy backend of service ``service`` (``app`` -> ``be_app``)."""
    return BACKEND_PREFIX + service


def acl_name(service: str) -> str:
    """The HAProxy ACL name of service ``service`` (``or`` -> ``acl_or``)."""
    return ACL_PREFIX + service
