"""The exceptions that cross room boundaries, each mapped to one CLI exit code.

* :class:`ValidationError` - bad input (payload, labels, settings, names): exit 2.
* :class:`UnknownNameError` / :class:`DuplicateNameError` - plugin names: exit 2.
* :class:`PluginError` - a plugin broke its contract: exit 2.
* :class:`StoreError` - the state store failed at run time: exit 1.
* :class:`ConflictError` - optimistic-locking conflict; the pipeline retries it.
* :class:`ReloadError` - the reloader could not apply a config: exit 1 (2 when HAProxy refused it).
"""

from __future__ import annotations

from typing import Any


class CosmosError(Exception):
    """Base class: every subclass carries the exit code the CLI maps it to.

    ``retryable`` tells the agent whether the same pass may succeed later
    (an unreachable store or remote, a missing container) or not (bad input,
    a config HAProxy refuses).
    """

    exit_code = 1

    @property
    def retryable(self) -> bool:
        return self.exit_code != 2


class ValidationError(CosmosError, ValueError):
    """A value from outside (payload, labels, settings) was refused.

    ``field`` is a dotted path such as ``candidateServices[1].predicate``.
    """

    exit_code = 2

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {_short(value)})")

    def within(self, prefix: str) -> "ValidationError":
        """The same error with ``prefix`` prepended to its field path."""
        joined = f"{prefix}.{self.field}" if self.field and not self.field.startswith("[") else f"{prefix}{self.field}"
        return ValidationError(joined, self.value, self.reason)


class UnknownNameError(CosmosError, LookupError):
    """A configured name (store scheme, mode, emitter...) has no installed implementation."""

    exit_code = 2

    def __init__(self, kind: str, name: str, installed: list[str], field: str | None = None) -> None:
        self.kind, self.name, self.installed, self.field = kind, name, installed, field
        where = f"{field}: " if field else ""
        listing = ", ".join(installed) if installed else "(none)"
        super().__init__(
            f"{where}{kind} {name!r} not recognised; installed: {listing}; is the plugin installed?"
        )


class DuplicateNameError(CosmosError):
    """Two plugins claim the same name in one family."""

    exit_code = 2


class PluginError(CosmosError):
    """A plugin broke its contract (wrong return type, a config line the core refuses).

    The message names the plugin and the method.  Exit code 2: the same input
    gets the same answer, so it is not retried; nothing is stored.
    """

    exit_code = 2


class StoreError(CosmosError):
    """The state store cannot be reached or failed."""


class ConflictError(CosmosError):
    """The stored state changed between load and apply; reload and retry."""


class ReloadError(CosmosError):
    """A config could not be validated or applied by the reloader.

    ``invalid=True``: HAProxy refused the config itself; retrying it cannot help.
    """

    def __init__(self, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid
        self.exit_code = 2 if invalid else 1  # a refused config is bad input

    @property
    def retryable(self) -> bool:
        return not self.invalid


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."
