"""``mibench leaderboard``: one leaderboard from one or several run directories."""

from __future__ import annotations

from pathlib import Path

import click

from mibench.cli.common import fail

FORMATS = ["table", "csv", "md", "latex"]
METRIC_NAMES = ["auc", "tpr@1%", "tpr@0.1%", "balanced-acc"]


@click.command("leaderboard")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--metric", type=click.Choice(METRIC_NAMES), default="auc", show_default=True,
              help="The attack figure shown per attack (table, md, latex).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table: fits 100 columns; csv: every column; md and latex: the paper's Table 1 shape.")
def leaderboard_command(run_dirs: tuple[Path, ...], metric: str, fmt: str) -> None:
    """Merge RUN_DIRS' results: a config run twice is one row, or a flagged conflict when the numbers differ;
    rows of different mibench or plugin versions (or code) stay apart."""
    from mibench.report.merge import RunReadError, load_results, merge_results
    from mibench.report.results import leaderboard
    from mibench.report.tables import render

    try:
        results = load_results(list(run_dirs))
    except RunReadError as exc:
        fail(f"error: {exc}")
    merged = merge_results(results)
    conflicts = merged[merged["conflict"] == True]  # noqa: E712 - a column of bools
    click.echo(render(leaderboard(merged), metric, fmt))
    if len(run_dirs) > 1 and fmt == "table":
        versions = sorted(set(merged["mibench_version"].astype(str)))
        click.echo(f"\n{len(results)} rows from {len(run_dirs)} runs -> {len(merged)} rows"
                   + (f"; mibench versions {', '.join(versions)} kept apart" if len(versions) > 1 else ""))
    for _, row in conflicts.iterrows():
        click.echo(f"conflict: {row['dataset']} / {row['architecture']} / {row['defense']} / seed {row['seed']} / "
                   f"{row['attack']}: auc {row['auc']:.6g} in {row['sources']}", err=True)
