"""``mibench exposed``: the samples each attack singles out, from a finished run's stored scores."""

from __future__ import annotations

from pathlib import Path

import click

from mibench.cli.common import fail


@click.command("exposed")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--top", type=click.IntRange(1, 100_000), default=10, show_default=True,
              help="Samples listed per defense config, seed and attack.")
@click.option("--attack", help="Only this attack (its label in results.csv, e.g. 'lira(mode=online)').")
@click.option("--defense", help="Only this defense config (its label in results.csv).")
def exposed_command(run_dir: Path, top: int, attack: str | None, defense: str | None) -> None:
    """List RUN_DIR's most exposed training samples per attack and write them to RUN_DIR/exposed.csv.

    A member's exposure is the false-positive rate at which the attack calls it a member
    (the share of non-members scoring at least as high); over a pool of targets, the
    median over the targets it trained, and how often it is caught at 0.1% FPR.
    """
    from mibench.cli.roc_cmd import results_problem
    from mibench.engine.layout import RunLayout

    layout = RunLayout(run_dir)
    if not layout.results_csv.is_file():
        fail(f"error: {run_dir}: no results.csv here; give the output directory of a mibench run")
    problem = results_problem(layout.results_csv)
    if problem is not None:
        fail(f"error: {layout.results_csv}: {problem}")
    from mibench.report.exposure import most_exposed
    from mibench.report.results import write_csv

    try:
        table = most_exposed(run_dir, top, attack, defense)
    except FileNotFoundError as exc:
        fail(f"error: {layout.results_csv}: names a stored attack output that is missing ({exc.filename})")
    except (OSError, KeyError, ValueError) as exc:
        fail(f"error: {run_dir}: cannot read the stored scores ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
    if table.empty:
        fail(f"error: {run_dir}/results.csv has no successful rows"
             + (f" for attack {attack!r}" if attack else "") + (f" for defense {defense!r}" if defense else ""))
    write_csv(table, layout.exposed_csv)
    shown = table[["defense", "attack", "rank", "sample", "label", "evaluations", "caught_at_0_1pct", "fpr_median"]]
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"\nexposed samples: {layout.exposed_csv}")
