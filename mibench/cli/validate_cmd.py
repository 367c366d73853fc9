"""``mibench validate``: check a grid and print its plan, without doing any work."""

from __future__ import annotations

import click

from mibench.cli.common import grid, reports_errors
from mibench.config.resolve import ResolvedGrid
from mibench.plan import Plan, build_plan


def describe_plan(resolved: ResolvedGrid, plan: Plan) -> str:
    g = resolved.grid
    targets, shadows = plan.model_count()
    lines = [
        f"grid {g.name!r} ({resolved.source}) -> {g.output_dir}",
        f"  datasets:      {', '.join(d.label for d in resolved.datasets)}",
        f"  architectures: {', '.join(a.label for a in resolved.architectures)}",
        f"  defenses:      {', '.join(d.label for d in resolved.defenses)}",
        f"  attacks:       {', '.join(a.label for a in resolved.attacks)}",
        f"  seeds:         {', '.join(map(str, g.seeds))}",
        f"  shadows:       {g.shadow.count} per target, training {g.shadow.training}",
        "plan:",
        f"  {len(plan.cells)} cells (dataset x architecture x defense config x seed)",
        f"  {targets + shadows} models to train: {targets} targets, {shadows} shadows "
        f"({len(plan.train_jobs)} training runs)",
        f"  {len(plan.attack_jobs)} attack jobs",
    ]
    return "\n".join(lines)


@click.command("validate")
@click.argument("grid_file", type=click.Path(dir_okay=False))
@reports_errors
def validate_command(grid_file: str) -> None:
    """Check GRID_FILE and print the plan: models to train, attacks to run."""
    resolved = grid(grid_file)
    for warning in resolved.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(describe_plan(resolved, build_plan(resolved)))
