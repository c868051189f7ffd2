"""What every command shares: option types, settings resolution, error mapping."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from cosmos_core.errors import CosmosError
from cosmos_core.settings import Settings

if TYPE_CHECKING:
    from cosmos_core.plugins import Plugins


try:  # typer >= 0.20 carries its own copy of Click
    from typer._click.exceptions import BadParameter, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on the real Click
    from click.exceptions import BadParameter, NoArgsIsHelpError, UsageError  # type: ignore[no-redef]


def usage_error(exc: UsageError, command: str, args: Any = ()) -> typer.Exit:
    """Print a usage error (unknown option or command, bad value, missing value) as one stderr line; exit 2.

    ``cosmos: error: <command>: <Click's message> (got '<value>') (see '<command> --help')``: Click's
    message names the option; for a bad value the value given on the command line is added when
    Click's message leaves it out (typer 0.29's messages do, Click's own do not), a value taken
    from the environment always, with the variable's name.
    """
    message = " ".join(exc.format_message().split())
    if isinstance(exc, BadParameter) and exc.param is not None:
        given = _given(list(getattr(exc.param, "opts", ())), [str(a) for a in args])
        envvar = getattr(exc.param, "envvar", None)
        from_env = given is None and isinstance(envvar, str) and envvar in os.environ
        if from_env:  # the value came from the environment: always named as "(got ...)", whatever Click's message says
            given = os.environ[envvar]
            message += "" if envvar in message else f" (from {envvar})"
        if given is not None and (from_env or (repr(given) not in message and f"'{given}'" not in message)):
            message += f" (got {given!r})"
    typer.echo(f"cosmos: error: {command}: {message} (see '{command} --help')", err=True)
    return typer.Exit(2)


def _given(opts: list[str], args: list[str]) -> str | None:
    """The last value given on the command line for one of ``opts`` (``--opt v`` or ``--opt=v``)."""
    found = None
    for i, arg in enumerate(args):
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                found = args[i + 1]
            elif arg.startswith(opt + "="):
                found = arg[len(opt) + 1:]
    return found


def _path(info_name: str | None, parent: Any) -> str:
    return " ".join(p for p in (parent.command_path if parent is not None else "", info_name or "") if p)


class _OneLineUsage:
    """Usage errors while parsing a command's or group's own arguments: one line (``--help`` is unchanged)."""

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[no-untyped-def]
        given = list(args)  # parsing consumes ``args``
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise usage_error(exc, _path(info_name, parent), given) from None


class CosmosCommand(_OneLineUsage, TyperCommand):
    """Typer's command, with usage errors on one line instead of a box."""


class CosmosGroup(_OneLineUsage, TyperGroup):
    """Typer's group, with usage errors on one line instead of a box, also for unknown commands."""

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        try:  # "No such command"
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            raise usage_error(exc, ctx.command_path, args) from None

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:  # a command's own UsageError/BadParameter raised while it runs
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise usage_error(exc, exc.ctx.command_path if exc.ctx is not None else ctx.command_path) from None


@dataclass
class GlobalOptions:
    config: str | None = None
    log_format: str | None = None
    log_level: str | None = None
    debug: bool | None = None


StoreOpt = Annotated[
    Optional[str],
    typer.Option(
        "--store",
        envvar="COSMOS_STORE",
        help="State store URL: sqlite:///PATH (default under ~/.local/state/cosmos) or dynamodb://TABLE.",
        show_default=False,
    ),
]
# https (issue 12)
CertsDirOpt = Annotated[
    Optional[str],
    typer.Option("--certs-dir", envvar="COSMOS_CERTS_DIR", show_default=False,
                 help="Directory of PEM files (certificate chain + private key) to serve over HTTPS."),
]
HttpsBindOpt = Annotated[
    Optional[str],
    typer.Option("--https-bind", envvar="COSMOS_HTTPS_BIND", show_default=False,
                 help="Address:port of the HTTPS frontend (default :443; on when --certs-dir or --acme-directory)."),
]
AcmeDirectoryOpt = Annotated[
    Optional[str],
    typer.Option("--acme-directory", envvar="COSMOS_ACME_DIRECTORY", show_default=False,
                 help="ACME directory URL; turns automatic certificates (HTTP-01) on."),
]
AcmeEmailOpt = Annotated[
    Optional[str],
    typer.Option("--acme-email", envvar="COSMOS_ACME_EMAIL", show_default=False,
                 help="Contact e-mail of the ACME account."),
]
AcmeCABundleOpt = Annotated[
    Optional[str],
    typer.Option("--acme-ca-bundle", envvar="COSMOS_ACME_CA_BUNDLE", show_default=False,
                 help="CA file for a private ACME server's own TLS."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
StatsBindOpt = Annotated[
    Optional[str],
    typer.Option("--stats-bind", help="Add a frontend serving HAProxy's Prometheus exporter on /metrics (and the stats "
                 "page with stats_auth): PORT (loopback) or ADDRESS:PORT. (default: off)", show_default=False),
]


def settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """Resolve settings (flags > env > cosmos.toml > defaults) and configure logging.

    A bad setting is reported like any other error: one line, exit 2.
    """
    return settings_and_plugins(ctx, **overrides)[0]


def settings_and_plugins(ctx: typer.Context, **overrides: Any) -> tuple[Settings, "Plugins"]:
    """:func:`settings`, and the installed plugins whose settings were resolved (reuse them)."""
    from cosmos_core import logs
    from cosmos_core.plugins import Plugins
    from cosmos_core.settings import load

    glob: GlobalOptions = ctx.obj or GlobalOptions()
    flags = {"log_format": glob.log_format, "log_level": glob.log_level, "debug": glob.debug or None}
    # Plugin discovery may warn (a plugin failed to load): log to stderr already, with the flags' format.
    logs.configure(glob.log_format if glob.log_format in logs.FORMATS else "auto",
                   glob.log_level if glob.log_level in logs.LEVELS else "info")
    with errors(debug=bool(glob.debug)):
        plugins = Plugins.discover()
        resolved = load({**flags, **overrides}, glob.config, plugins=plugins)
        if resolved.log_format not in logs.FORMATS:
            _fail(f"log_format: must be one of {', '.join(logs.FORMATS)} (got {resolved.log_format!r})", 2)
        if resolved.log_level not in logs.LEVELS:
            _fail(f"log_level: must be one of {', '.join(logs.LEVELS)} (got {resolved.log_level!r})", 2)
    logs.configure(resolved.log_format, resolved.log_level)
    return resolved, plugins


@contextmanager
def errors(debug: bool = False) -> Iterator[None]:
    """Map exceptions to one stderr line and an exit code (traceback only with --debug)."""
    try:
        yield
    except typer.Exit:
        raise
    except CosmosError as exc:
        if debug:
            raise
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for a traceback)", 1)


def _fail(message: str, code: int) -> None:
    typer.echo(f"cosmos: error: {message}", err=True)
    raise typer.Exit(code)


def write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
