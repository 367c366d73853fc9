"""``mibench roc``: log-log ROC curves of a finished run, from its stored attack scores."""

from __future__ import annotations

from pathlib import Path

import click

from mibench.cli.common import fail
from mibench.engine.layout import RunLayout
from mibench.report.plots import draw_rocs


@click.command("roc")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, help="Which seed's models to plot (default: the smallest).")
def roc_command(run_dir: Path, seed: int | None) -> None:
    """Draw RUN_DIR/plots/roc-*.png: one log-log ROC per dataset, architecture and attack."""
    if not RunLayout(run_dir).results_csv.is_file():
        fail(f"error: {run_dir}: no results.csv here; give the output directory of a mibench run")
    paths = draw_rocs(run_dir, seed)
    if not paths:
        fail(f"error: {run_dir}/results.csv has no successful rows{'' if seed is None else f' for seed {seed}'}")
    for path in paths:
        click.echo(str(path))
