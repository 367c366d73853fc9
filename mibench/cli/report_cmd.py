"""``mibench report``: one self-contained HTML page (inline CSS and SVG figures, no JavaScript) of one or
several runs."""

from __future__ import annotations

from pathlib import Path

import click

from mibench.cli.common import fail


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write (default: RUN_DIR/report.html for one run, ./report.html for several).")
@click.option("--max-histograms", type=click.IntRange(0, 1000), default=40, show_default=True,
              help="At most this many score histograms; the page says how many are left out.")
def report_command(run_dirs: tuple[Path, ...], output: Path | None, max_histograms: int) -> None:
    """Write one HTML report of RUN_DIRS: the runs, the leaderboard, privacy-utility plots, log-log ROC
    curves, member and non-member score histograms and failed cells."""
    from mibench.report.merge import RunReadError
    from mibench.report.page import REPORT_NAME, write_report

    if output is None:
        output = run_dirs[0] / REPORT_NAME if len(run_dirs) == 1 else Path(REPORT_NAME)
    try:
        path = write_report(list(run_dirs), output, max_histograms)
    except RunReadError as exc:
        fail(f"error: {exc}")
    except OSError as exc:
        fail(f"error: cannot write the report {output}: {exc.strerror or exc}")
    click.echo(str(path))
