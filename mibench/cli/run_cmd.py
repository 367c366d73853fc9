"""``mibench run``: train what is missing, attack, write results.csv and leaderboard.csv."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from mibench.cli.common import fail, grid, registry, reports_errors
from mibench.engine.layout import RunLayout
from mibench.runner import Runner

FAILED = 1


@click.command("run")
@click.argument("grid_file", type=click.Path(dir_okay=False))
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Override the grid's output directory.")
@click.option("--device", help="Override the grid's device (auto, cpu, cuda, cuda:N).")
@reports_errors
def run_command(grid_file: str, output: Path | None, device: str | None) -> None:
    """Run GRID_FILE. Finished work in the output directory is reused, never redone."""
    resolved = grid(grid_file, device)
    if resolved.warnings:
        fail("error: " + "\nerror: ".join(resolved.warnings))
    summary = Runner(resolved, registry(), output).run()
    layout = RunLayout(summary.output_dir)
    board = pd.read_csv(layout.leaderboard_csv)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 4):
        click.echo(board.to_string(index=False))
    click.echo(f"\nresults: {layout.results_csv}\nleaderboard: {layout.leaderboard_csv}")
    if not summary.ok:
        click.echo(f"{len(summary.failures)} of {len(summary.rows)} result rows failed "
                   "(details in results.csv and errors.log):", err=True)
        for failure in summary.failures:
            click.echo(f"  {failure}", err=True)
        raise SystemExit(FAILED)
