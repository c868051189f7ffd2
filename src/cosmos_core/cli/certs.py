"""``cosmos certs``: the certificates HTTPS serves, their names, issuer, expiry, source and users."""

import json

import typer

from cosmos_core.cli import common


def certs(
    ctx: typer.Context,
    store: common.StoreOpt = None,
    certs_dir: common.CertsDirOpt = None,
    as_json: common.JsonOpt = False,
) -> None:
    """Show each certificate: names, issuer, expiry, source (directory or ACME) and the services using it.

    Files of ``--certs-dir`` that cannot serve are listed too, each with the
    reason (JSON: ``skipped``, a list of ``{"file", "reason"}``).
    """
    settings, plugins = common.settings_and_plugins(ctx, store=store, certs_dir=certs_dir)
    with common.errors(settings.debug):
        from cosmos_core.certs import report, scan_dir
        from cosmos_core.runtime import Runtime

        directory = settings.options.get("certs_dir")
        found, skipped = scan_dir(directory) if directory else ([], [])
        from cosmos_core.builtin.sqlite_store import BadStorePath, MissingStore

        runtime = Runtime(settings, plugins, create_store=False)
        try:
            found = found + stored_certificates(runtime)
            hosts = [
                (table, service.name, service.predicate)
                for table in runtime.store.tables()
                for service in runtime.store.load(table).services.values()
                if service.mode == "host" and dict(service.options).get("https") != "off"  # not served on HTTPS
            ]
        except (MissingStore, BadStorePath) as exc:  # the directory's certificates are still worth listing
            typer.echo(f"cosmos: warning: {exc}; listing the certificates of --certs-dir only", err=True)
            hosts = []
        finally:
            runtime.close()
        rows = report(found, hosts)
    bad = [{"file": file, "reason": reason} for file, reason in skipped]
    if as_json:
        common.write_stdout(json.dumps({"certificates": rows, "skipped": bad}, indent=2, sort_keys=True) + "\n")
        return
    if not rows and not bad:
        common.write_stdout("(no certificates: set --certs-dir or --acme-directory)\n")
        return
    lines = [f"skipped {entry['file']}: {entry['reason']}" for entry in bad]
    for row in rows:
        lines.append(f"{row['name']}  expires {row['not_after']} ({row['days_left']} days)  {row['source']}")
        lines.append(f"  names: {', '.join(row['names'])}")
        lines.append(f"  issuer: {row['issuer']}")
        lines.append(f"  services: {', '.join(row['services']) or '-'}")
    common.write_stdout("\n".join(lines) + "\n")


def stored_certificates(runtime) -> list:  # type: ignore[no-untyped-def]
    """The certificates the ACME resolver keeps (none when ``acme_directory`` is not set)."""
    resolver = runtime.certificate_resolver
    return list(resolver.certificates()) if resolver is not None else []
