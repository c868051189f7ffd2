"""The ``none`` reloader: render only; something else picks the config up."""

from __future__ import annotations

from cosmos_core.bundle import Bundle
from cosmos_core.contracts import Provides, ReloadOutcome
from cosmos_core.hookspecs import hookimpl
from cosmos_core.settings import Settings


class NoReload:
    """Installs nothing; every outcome is ``ReloadOutcome(False, "reloader is 'none'")``."""

    def apply(self, bundle: Bundle, previous: Bundle | None) -> ReloadOutcome:
        return ReloadOutcome(False, "reloader is 'none'")


def make_none(settings: Settings) -> NoReload:
    return NoReload()


@hookimpl
def cosmos_reloaders() -> list[Provides]:
    return [Provides("none", make_none, "do not reload anything")]
