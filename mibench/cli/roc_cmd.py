"""``mibench roc``: log-log ROC curves of a finished run, from its stored attack scores."""

from __future__ import annotations

from pathlib import Path

import click

from mibench.cli.common import fail

# The columns of results.csv that the figures are drawn from.
ROC_COLUMNS = ("status", "seed", "dataset", "architecture", "attack", "defense", "auc", "n_nonmembers",
               "attack_output")
STORE_KEY = r"[0-9A-Za-z_-]+"  # a hash: never a path, never a NUL byte


def results_problem(path: Path) -> str | None:
    """Why ``path`` (a run's results.csv) cannot be plotted, in a few words; None when it can."""
    import pandas as pd

    try:
        results = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return "the file is empty"
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        return f"not a readable CSV ({' '.join(str(exc).split())[:200]})"
    except (OSError, ValueError) as exc:
        return f"cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
    missing = [c for c in ROC_COLUMNS if c not in results.columns]
    if missing:
        return f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; not a mibench results file"
    from mibench.report.merge import table_problem

    problem = table_problem(results)
    if problem is not None:
        return problem
    ok = results[results["status"] == "ok"]
    bad_keys = ok[~ok["attack_output"].astype(str).str.fullmatch(STORE_KEY)]
    if not bad_keys.empty:
        return f"line {bad_keys.index[0] + 2}: attack_output is not the key of a stored output"
    return None


@click.command("roc")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, help="Which seed's models to plot (default: the smallest).")
def roc_command(run_dir: Path, seed: int | None) -> None:
    """Draw RUN_DIR/plots/roc-*.png: one log-log ROC per dataset, architecture and attack."""
    from mibench.engine.layout import RunLayout

    results_csv = RunLayout(run_dir).results_csv
    if not results_csv.is_file():
        fail(f"error: {run_dir}: no results.csv here; give the output directory of a mibench run")
    problem = results_problem(results_csv)
    if problem is not None:
        fail(f"error: {results_csv}: {problem}")
    from mibench.report.plots import draw_rocs

    try:
        paths = draw_rocs(run_dir, seed)
    except FileNotFoundError as exc:
        fail(f"error: {results_csv}: names a stored attack output that is missing ({exc.filename}); "
             "the run is unfinished or the file is damaged")
    except OSError as exc:  # a stored attack output that is unreadable, an unwritable plots/
        fail(f"error: {run_dir}: cannot draw the ROC curves: {exc}")
    except (KeyError, TypeError, ValueError) as exc:  # a damage that the checks above let through
        fail(f"error: {results_csv}: cannot draw the ROC curves from it ({type(exc).__name__}: "
             f"{' '.join(str(exc).split())[:200]})")
    if not paths:
        fail(f"error: {run_dir}/results.csv has no successful rows{'' if seed is None else f' for seed {seed}'}")
    for path in paths:
        click.echo(str(path))
