"""Registers the ``acme`` certificate resolver and its settings (acme, josepy, cryptography
are imported only when it runs)."""

from __future__ import annotations

from typing import Any

from cosmos_core import Provides, hookimpl
from cosmos_core.contracts import Setting
from cosmos_core.settings import Settings

ACME_DIRECTORY = Setting("acme_directory", str, None, "ACME directory URL; turns ACME (and HTTPS) on", section="acme")
ACME_EMAIL = Setting("acme_email", str, None, "contact e-mail of the ACME account", section="acme")
ACME_CA_BUNDLE = Setting("acme_ca_bundle", str, None, "CA file for a private ACME server's own TLS", section="acme")
ACME_STORAGE = Setting("acme_storage", str, "store",
                       "where the account and certificates live: store (beside the services) or dir:///path",
                       section="acme")
ACME_RENEW_DAYS = Setting("acme_renew_days", float, 30.0, "renew a certificate when fewer days are left",
                          section="acme")
HAPROXY_SOCKET = Setting("haproxy_socket", str, None,
                         "HAProxy runtime API (UNIX socket path or host:port, level admin) for challenges "
                         "and certificates", section="acme")
SETTINGS = (ACME_DIRECTORY, ACME_EMAIL, ACME_CA_BUNDLE, ACME_STORAGE, ACME_RENEW_DAYS, HAPROXY_SOCKET)


def make(settings: Settings) -> Any:
    from cosmos_acme.resolver import make_resolver

    return make_resolver(settings)


@hookimpl
def cosmos_certificate_resolvers() -> list[Provides]:
    return [Provides("acme", make, "certificates over ACME HTTP-01, installed through HAProxy's runtime API")]


@hookimpl
def cosmos_settings() -> list[Setting]:
    return list(SETTINGS)
