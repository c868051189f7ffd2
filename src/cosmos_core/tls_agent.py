"""Wiring a certificate resolver (ACME) into ``cosmos watch`` (https, issue 12).

* Until the core's Bundle carries files to every reloader, the certificate
  files, crt-list and challenge map are written here, beside the live config,
  with the ``host`` reloader (``docker-exec`` copies ``haproxy.cfg`` only).
* The emitter serves the certificates you bring (``certs_dir``) plus every
  certificate the resolver holds, from the first render on (a restart starts
  from the truth).
* After each change the resolver reports, the emitter's certificate set is
  replaced (the next bundle carries it) and, with the ``host`` reloader, the
  certificate files and crt-list are written beside the live config at once,
  so a later reload or restart loads what HAProxy already serves.
* After each pass the resolver learns the host names that services with
  HTTPS claim; a name a brought certificate covers is never issued.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosmos_core.certs import Certificate, for_host, merge, write_files
from cosmos_core.logs import get_logger
from cosmos_core.tls import policy

log = get_logger("cosmos.tls")


def wanted_hosts(services: Any, brought: list[Certificate]) -> list[str]:
    """Host names of host-routed services with HTTPS on or redirect that no brought certificate covers."""
    return sorted({
        s.predicate for s in services
        if s.mode == "host" and policy(dict(s.options)) != "off" and for_host(brought, s.predicate) is None
    })


def attach(runtime: Any, agent: Any) -> bool:
    """Write the HTTPS files and connect ``runtime.certificate_resolver`` (if any) to the emitter and
    ``agent``; False when HTTPS is off (or the emitter renders no TLS)."""
    emitter = runtime.emitter
    base_tls = getattr(emitter, "tls", None)
    if base_tls is None:
        return False
    resolver = runtime.certificate_resolver
    brought = list(base_tls.certificates)
    settings = runtime.settings

    def update(certificates: list[Certificate]) -> None:
        emitter.tls = base_tls.with_certificates(merge(certificates, brought))
        config = settings.options.get("haproxy_config")
        if settings.reloader == "host" and config:  # between passes: the next bundle carries them too
            write_files(Path(config).parent, emitter.files())
        log.info("certificates_updated", count=len(emitter.tls.certificates))

    update(resolver.certificates() if resolver is not None else [])
    if resolver is None:
        return True
    resolver.subscribe(update)
    agent.observers.append(lambda result, outcome: resolver.observe(wanted_hosts(result.services, brought),
                                                                    reloaded=outcome.reloaded))
    return True
