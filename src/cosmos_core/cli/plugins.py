"""``cosmos plugins``: what is installed and which names each plugin provides."""

import json
from dataclasses import asdict

import typer

from cosmos_core.cli import common


def plugins(ctx: typer.Context, as_json: common.JsonOpt = False) -> None:
    """List installed plugins, the names they provide, and any that failed to load."""
    settings, found = common.settings_and_plugins(ctx)
    with common.errors(settings.debug):
        infos = found.describe()
        declared = found.settings
    options = {info.name: declared.describe(info.name) for info in infos}
    if as_json:
        data = {"plugins": [{**asdict(i), "options": options.get(i.name, [])} for i in infos],
                "failed": [asdict(f) for f in found.failed]}
        common.write_stdout(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    lines = []
    for info in infos:
        lines.append(f"{info.name}  ({info.source})")
        for family, names in sorted(info.provides.items()):
            lines.append(f"    {family}: {', '.join(names)}")
        for option in options.get(info.name, []):
            lines.append(f"    option {option['name']} ({option['type']}, default {option['default']!r}; "
                         f"{option['env']}, [{option['table']}] {option['key']}): {option['help']}")
    for failed in found.failed:
        lines.append(f"{failed.name}  ({failed.source})  FAILED: {failed.error}")
    common.write_stdout("\n".join(lines) + "\n")

