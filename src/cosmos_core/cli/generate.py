"""``cosmos generate``: the original Cosmos request -> stored state -> haproxy.cfg."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from cosmos_core.cli import common

if TYPE_CHECKING:
    from typing import Callable

    from cosmos_core.bundle import Bundle
    from cosmos_core.settings import Settings


def generate(
    ctx: typer.Context,
    payload: Annotated[
        Optional[str],
        typer.Argument(help="The request JSON (either dialect); '-' (the default) reads stdin.", show_default=False),
    ] = None,
    store: common.StoreOpt = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write the config to this file (and its auxiliary files beside it) atomically instead of stdout."),
    ] = None,
    template: Annotated[
        Optional[str], typer.Option("--template", envvar="COSMOS_TEMPLATE", help="Your own jinja2 template.")
    ] = None,
    emitter: Annotated[
        Optional[str], typer.Option("--emitter", envvar="COSMOS_EMITTER", help="Config emitter name (default: haproxy).")
    ] = None,
    certs_dir: common.CertsDirOpt = None,
    https_bind: common.HttpsBindOpt = None,
    stats_bind: common.StatsBindOpt = None,
    check: Annotated[
        Optional[bool],
        typer.Option("--check/--no-check", show_default=False,
                     help="Run `haproxy -c` (haproxy_bin) on the config and its files before storing or writing "
                          "anything; a refused config exits 1 and changes nothing. Default: check when haproxy_bin "
                          "is found (else warn once and write); --check requires it."),
    ] = None,
) -> None:
    """Merge a request with the stored services, check the config with haproxy -c, store the result and print it."""
    settings, plugins = common.settings_and_plugins(ctx, store=store, payload=payload, template=template,
                                                    emitter=emitter, certs_dir=certs_dir, https_bind=https_bind,
                                                    stats_bind=stats_bind)
    with common.errors(settings.debug):
        from cosmos_core.runtime import Runtime

        runtime = Runtime(settings, plugins)
        from cosmos_core.passes import LocalPass

        local = isinstance(runtime.strategy, LocalPass)
        if output is None and local and hasattr(runtime.emitter, "use_maps"):
            runtime.emitter.use_maps = False  # stdout holds one file: the stand-alone (ACL) form, no map files
        verify = haproxy_verifier(settings, check, stored_here=local)
        if local:
            runtime.strategy.verify = checks(verify, output)  # checked before the store is written
        try:
            source = runtime.event_source("payload")
            for snapshot in source.snapshots():
                result = runtime.strategy.run(snapshot)
                if not local:  # a remote Cosmos stored it already
                    checks(verify, output)(result.bundle)
                if output is None:
                    common.write_stdout(result.config)
                else:
                    write_output(result.bundle, output)
        finally:
            runtime.close()


def haproxy_verifier(settings: "Settings", check: bool | None, stored_here: bool = True) -> "Callable[[Bundle], None] | None":
    """``haproxy -c`` on a staged copy of a bundle, raising a one-line :class:`CosmosError` (exit 1) when refused.

    ``check``: ``True`` requires ``haproxy_bin`` (missing: exit 1), ``False`` checks nothing, ``None`` checks
    when ``haproxy_bin`` is found and otherwise warns once on stderr and checks nothing.  A ``haproxy_bin``
    set to anything but the default ``haproxy`` must be an executable file or a command on PATH
    (:class:`ValidationError`, exit 2, whatever ``check`` says but ``False``).  A check that runs longer
    than :data:`~cosmos_core.quarantine.CHECK_TIMEOUT` seconds is killed (its process group too) and counts as a failure (exit 1).
    """
    if check is False:
        return None
    import re

    from cosmos_core.errors import CosmosError
    from cosmos_core.quarantine import haproxy_bin_found, haproxy_check

    binary = str(settings.options.get("haproxy_bin") or "haproxy")
    if not haproxy_bin_found(binary, "; nothing was stored or written"):  # a wrong one set explicitly: exit 2
        if check:
            raise CosmosError(f"--check: haproxy_bin {binary!r} not found; install HAProxy, set haproxy_bin "
                              "(COSMOS_HAPROXY_BIN) or pass --no-check")
        typer.echo(f"cosmos: warning: haproxy_bin {binary!r} not found: the config is written unchecked "
                   "(set haproxy_bin, or pass --no-check to silence this)", err=True)
        return None
    run_check = haproxy_check(binary)
    nothing = "nothing was stored or written" if stored_here else "nothing was written (the remote Cosmos stored it)"

    def verify(bundle: "Bundle") -> None:
        try:
            reason = run_check(bundle)
        except CosmosError as exc:  # could not run, or ran too long (killed)
            raise CosmosError(f"{exc}; {nothing}") from None
        if reason is not None:
            reason = re.sub(r"/\S*cosmos-check-[^/\s]+/", "", reason)  # the staged copy's directory: name the file only
            raise CosmosError(f"haproxy -c ({binary}) refused the config: {reason}; {nothing}")

    return verify


def checks(verify: "Callable[[Bundle], None] | None", output: Path | None) -> "Callable[[Bundle], None]":
    """Everything that can refuse a bundle before it is stored: the ``--output`` path, then ``haproxy -c``."""

    def check(bundle: "Bundle") -> None:
        if output is not None:
            check_output(bundle, output)
        if verify is not None:
            verify(bundle)

    return check


def check_output(bundle: "Bundle", output: Path) -> None:
    """Raise :class:`CosmosError` (exit 1, as a failed write) when a file of ``bundle`` could not be
    written at ``output`` (the main file) or beside it: a directory in a file's place, a file in a
    directory's place, a directory that cannot be written.  Called before anything is stored."""
    import os

    from cosmos_core.bundle import target_of
    from cosmos_core.errors import CosmosError

    def refuse(reason: str) -> None:
        raise CosmosError(f"--output {output}: cannot write ({reason}); nothing was stored or written")

    for path in sorted(bundle.files):
        target = target_of(bundle, output, path)
        if target.is_dir():
            refuse(f"{target} is a directory (give the path of the config file)" if path == bundle.main
                   else f"{target} is a directory, where the file {path} goes")
        parent = target.parent
        while not os.path.lexists(parent):
            parent = parent.parent
        if not parent.is_dir():
            refuse(f"{parent} is a file, where a directory for {path} goes")
        if not os.access(parent, os.W_OK | os.X_OK):
            refuse(f"{parent} is not writable")


def write_output(bundle: "Bundle", output: Path) -> None:
    """The main file at ``output``, auxiliary files beside it; each atomic, all or none."""
    from cosmos_core.bundle import install
    from cosmos_core.errors import CosmosError

    try:
        install(bundle, output)
    except OSError as exc:
        raise CosmosError(f"--output {output}: cannot write ({exc.strerror or exc}); the store is updated, "
                          "run again once the path is writable") from None
