"""``mibench plugins``: every registered plugin, its package and its params."""

from __future__ import annotations

import json

import click

from mibench.cli.common import registry, reports_errors


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output with each params schema.")
@reports_errors
def plugins_command(as_json: bool) -> None:
    """List datasets, architectures, defenses and attacks."""
    infos = registry().all()
    if as_json:
        out = [
            {
                "name": i.name,
                "kind": i.kind,
                "package": i.package,
                "version": i.version,
                "module": i.module,
                "summary": i.cls.summary(),
                "params": i.cls.Params.model_json_schema(),
            }
            for i in infos
        ]
        click.echo(json.dumps(out, indent=2, default=str))
        return
    from mibench.registry.table import HOOKS  # the registry imports torch: not before a grid is read

    kind = None
    for info in infos:
        if info.kind != kind:
            kind = info.kind
            click.echo(click.style(f"\n{HOOKS[kind].removeprefix('register_')}", bold=True))
        fields = info.cls.Params.model_fields
        params = ", ".join(f"{k}={json.dumps(f.get_default(call_default_factory=True), default=str)}"
                           for k, f in fields.items()) or "-"
        click.echo(f"  {info.name:<22} {info.package} {info.version}  {info.cls.summary()}")
        click.echo(f"  {'':<22} params: {params}")
