"""structlog set-up: console renderer on a TTY, JSON lines otherwise, always on stderr."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("auto", "console", "json")


def configure(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog once per process; ``auto`` picks console on a TTY."""
    stream = sys.stderr
    if log_format == "auto":
        log_format = "console" if stream.isatty() else "json"
    renderer: Any
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*args: Any) -> Any:
    """Write to whatever ``sys.stderr`` is when the message is logged."""
    return structlog.PrintLogger(file=sys.stderr)


def get_logger(name: str) -> Any:
    """A lazily bound logger: configuration may happen after import."""
    return structlog.get_logger(name)
