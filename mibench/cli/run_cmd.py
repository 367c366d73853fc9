"""``mibench run``: train what is missing, attack, write results.csv and leaderboard.csv."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mibench.cli.common import fail, grid, interrupted, registry, reports_errors

if TYPE_CHECKING:
    from mibench.runner import RunSummary

FAILED = 1


def execution_settings(grid_settings, options: dict):
    """The grid's ``execution:`` block with the command line's options on top, validated the same way."""
    from pydantic import ValidationError

    from mibench.config.errors import ConfigError, Problem, describe
    from mibench.config.execution import ExecutionConfig

    given = {k: v for k, v in options.items() if v is not None}
    try:
        return ExecutionConfig.model_validate({**grid_settings.model_dump(), **given})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "--" + str(err["loc"][0]).replace("_", "-")
        raise ConfigError("command line", [Problem((name,), describe(err))]) from None


@click.command("run")
@click.argument("grid_file", type=click.Path(dir_okay=False))
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Override the grid's output directory.")
@click.option("--device", help="Override the grid's device (auto, cpu, cuda, cuda:N).")
@click.option("--executor", type=click.Choice(["auto", "serial", "local", "ray"]),
              help="serial: one job at a time here; local: worker processes on this machine; ray: Ray tasks on a "
              "cluster; auto (default): local with several cores or GPUs, else serial.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Parallel jobs (default: one per GPU x "
              "--jobs-per-device, or cores / --threads-per-job on a CPU).")
@click.option("--devices", help="cpu, cuda (every GPU) or cuda:0,cuda:1,... (default: the grid's device).")
@click.option("--jobs-per-device", type=click.IntRange(1, 64), help="Jobs run at once on one GPU (default 1).")
@click.option("--threads-per-job", type=click.IntRange(1, 1024),
              help="CPU threads per job (default 1 on a CPU, cores / workers with GPUs); recorded in run.json.")
@click.option("--ray-address", help="Address of an existing Ray cluster (default: start a local one).")
@click.option("--no-report", is_flag=True, help="Do not write report.html (the HTML report) into the run directory.")
@reports_errors
def run_command(grid_file: str, output: Path | None, device: str | None, executor: str | None,
                workers: int | None, devices: str | None, jobs_per_device: int | None,
                threads_per_job: int | None, ray_address: str | None, no_report: bool) -> None:
    """Run GRID_FILE. Finished work in the output directory is reused, never redone.

    Execution settings come from the grid's ``execution:`` block; options given here win.
    """
    output_dir = None  # known once the runner has it: what an interrupted run keeps
    try:
        resolved = grid(grid_file, device)
        if resolved.warnings:
            fail("error: " + "\nerror: ".join(resolved.warnings))
        for advice in resolved.advice:
            click.echo(f"warning: {advice}", err=True)
        from mibench.runner import Runner

        options = {"executor": executor, "workers": workers, "devices": devices, "jobs_per_device": jobs_per_device,
                   "threads_per_job": threads_per_job, "ray_address": ray_address}
        execution = execution_settings(resolved.grid.execution, options)
        runner = Runner(resolved, registry(), output, execution=execution)
        output_dir = runner.output_dir
        summary = runner.run()
        _report(summary, page=not no_report)
    except KeyboardInterrupt as exc:
        interrupted(output_dir, exc)


def _write_page(output_dir: Path) -> None:
    """Write report.html into the run directory; a failure prints one error line and never fails the run."""
    try:
        from mibench.report.page import REPORT_NAME, write_report

        path = write_report([Path(output_dir)], Path(output_dir) / REPORT_NAME)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the run's results are written; the page is a convenience
        click.echo(f"error: could not write the HTML report: {type(exc).__name__}: "
                   f"{' '.join(str(exc).split())[:200]}", err=True)
        return
    click.echo(f"report: {path}")


def _report(summary: RunSummary, page: bool = True) -> None:
    import pandas as pd

    from mibench.engine.layout import RunLayout
    from mibench.report.tables import render

    layout = RunLayout(summary.output_dir)
    board = pd.read_csv(layout.leaderboard_csv)
    click.echo(render(board, "auc", "table"))
    click.echo(f"\nresults: {layout.results_csv}\nleaderboard: {layout.leaderboard_csv}")
    if page:
        _write_page(summary.output_dir)
    if not summary.ok:
        click.echo(f"{len(summary.failures)} of {len(summary.rows)} result rows failed "
                   "(details in results.csv and errors.log):", err=True)
        for failure in summary.failures:
            click.echo(f"  {failure}", err=True)
        raise SystemExit(FAILED)
