"""``mibench validate``: check a grid and print its plan, without doing any work."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import click

from mibench.cli.common import grid, reports_errors

if TYPE_CHECKING:
    from mibench.config.resolve import ResolvedGrid
    from mibench.engine.plan import Plan


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
        f"  protocol:      {resolved.protocol.describe(g)}",
        "plan:",
        f"  {len(plan.cells)} cells (dataset x architecture x defense config x seed)",
        f"  {targets + shadows} models to train: {targets} targets, {shadows} shadows "
        f"({len(plan.train_jobs)} training runs)",
        f"  {len(plan.attack_jobs)} attack jobs",
        "what each attack needs:",
        *(f"  {a.label}: {resolved.protocol.attack_need(a.info.cls.needs(a.params))}" for a in resolved.attacks),
    ]
    return "\n".join(lines)


def _duration(hours: float) -> str:
    if hours >= 1:
        return f"{hours:.1f} GPU-hours"
    return f"{hours * 60:.1f} GPU-minutes" if hours * 60 >= 1 else f"{hours * 3600:.0f} GPU-seconds"


def describe_cost(resolved: ResolvedGrid, plan: Plan, tflops: float) -> str:
    from mibench.engine.estimate import plan_cost

    rows, unknown = plan_cost(resolved, plan)
    lines = ["estimate (training, predictions, and attacks by their declared query cost):"]
    total = 0.0
    for r in rows:
        hours = (r.train_pflops + r.attack_pflops) * 1e15 / (tflops * 1e12) / 3600
        total += hours
        attacks = f" + {r.attack_pflops:.3g} PFLOP attacks" if r.attack_pflops else ""
        lines.append(f"  {r.dataset} / {r.architecture}: {r.models} models, {r.params_m:.2f}M params, "
                     f"{r.gflops_per_image:.3g} GFLOP/image forward, {r.train_pflops:.3g} PFLOP{attacks}, "
                     f"~{_duration(hours)}")
    lines.append(f"  total ~{_duration(total)} at an assumed {tflops:g} TFLOP/s effective (--tflops to change)")
    for label in unknown:
        lines.append(f"  {label}: size unknown without its data, not estimated")
    return "\n".join(lines + describe_stacks(resolved, plan))


def describe_stacks(resolved: ResolvedGrid, plan: Plan) -> list[str]:
    """How training stacks on the grid's device (a GPU for device auto, as the estimate assumes)."""
    import torch

    from mibench.engine.stacking import stack_plans

    name = resolved.grid.device
    device = torch.device("cpu" if name == "cpu" else "cuda")
    runs = list(plan.train_jobs.values())
    where = "the CPU" if device.type == "cpu" else f"a GPU (device {name})"
    lines = [f"training on {where} (training.stack; small models alone leave a GPU mostly idle):"]
    return lines + [f"  {p.describe()}" for p in stack_plans(runs, device)]


def _default_tflops() -> float:
    from mibench.engine.estimate import DEFAULT_TFLOPS

    return DEFAULT_TFLOPS


class _EngineDefault(click.Option):
    """An option whose default is an engine constant: looked up for --help, and by the command
    once the grid passed its schema (the engine imports torch), never while parsing."""

    def __init__(self, *args: object, default_from: Callable[[], object], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.default_from = default_from

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        unset, self.default = self.default, self.default_from()
        try:
            return super().get_help_record(ctx)
        finally:
            self.default = unset


@click.command("validate")
@click.argument("grid_file", type=click.Path(dir_okay=False))
@click.option("--tflops", cls=_EngineDefault, default_from=_default_tflops, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Effective training throughput assumed for the time estimate, in TFLOP/s.")
@reports_errors
def validate_command(grid_file: str, tflops: float | None) -> None:
    """Check GRID_FILE and print the plan: models to train, attacks to run, compute estimate."""
    resolved = grid(grid_file)
    from mibench.engine.plan import build_plan

    tflops = _default_tflops() if tflops is None else tflops
    for warning in resolved.warnings + resolved.advice:
        click.echo(f"warning: {warning}", err=True)
    plan = build_plan(resolved)
    click.echo(describe_plan(resolved, plan))
    click.echo(describe_cost(resolved, plan, tflops))
