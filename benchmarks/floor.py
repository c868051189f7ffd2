"""The floor for CLI timings: a do-nothing Typer command with the same imports as `cosmos generate`."""

import sqlite3  # noqa: F401

import jinja2  # noqa: F401
import pluggy  # noqa: F401
import structlog  # noqa: F401
import typer

app = typer.Typer()


@app.command()
def nothing() -> None:
    """Do nothing."""


if __name__ == "__main__":
    app()
