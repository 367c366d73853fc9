"""Log-log ROC curves from a finished run, drawn from the stored attack scores.

Nothing is retrained or re-attacked: every result row names the stored output
(``attack_output``) that holds its scores and membership labels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from mibench.engine.layout import RunLayout
from mibench.engine.store import Store


def pyplot():
    """matplotlib's pyplot, headless, with every label drawn as plain text.

    Labels are names from grids and plugins: a ``$`` in one must not be read as
    mathtext (an unbalanced or odd one would raise and lose the whole report).
    """
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def roc_points(store: Store, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) of the exact ROC curve of one stored attack output."""
    arrays = store.load_arrays("attacks", key)
    fpr, tpr, _ = roc_curve(arrays["membership"], arrays["scores"])
    return fpr, tpr


def roc_figure(rows: pd.DataFrame, points: Callable[[pd.Series], tuple[np.ndarray, np.ndarray]], title: str):
    """A log-log ROC figure (matplotlib): a curve per row (``points(row)`` gives its FPR and TPR) and the diagonal.

    Rates are floored at one non-member (``1 / n_nonmembers``) so that a log axis can show them.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    floor = 1.0 / max(int(rows["n_nonmembers"].max()), 1)
    for _, row in rows.iterrows():
        fpr, tpr = points(row)
        ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), label=f"{row['defense']} (AUC {row['auc']:.3f})")
    ax.plot([floor, 1], [floor, 1], "k:", linewidth=0.8, label="chance")
    ax.set(xscale="log", yscale="log", xlim=(floor, 1), ylim=(floor, 1), xlabel="false positive rate",
           ylabel="true positive rate", title=title)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def draw_rocs(run_dir: Path, seed: int | None = None) -> list[Path]:
    """One log-log ROC figure per (dataset, architecture, attack): a curve per defense config.

    Figures go to ``run_dir/plots/``; returns their paths. ``seed`` picks the run
    (default: the smallest seed present).
    """
    plt = pyplot()

    layout = RunLayout(run_dir)
    results = pd.read_csv(layout.results_csv)
    results = results[results["status"] == "ok"]
    if results.empty:
        return []
    seed = int(results["seed"].min()) if seed is None else seed
    results = results[results["seed"] == seed]
    store = layout.store()
    out_dir = layout.plots_dir
    out_dir.mkdir(exist_ok=True)
    paths = []
    for (dataset, architecture, attack), rows in results.groupby(["dataset", "architecture", "attack"], sort=False):
        fig = roc_figure(rows, lambda row: roc_points(store, row["attack_output"]),
                         f"{attack} on {dataset} / {architecture}, seed {seed}")
        name = "roc-" + "-".join(str(p) for p in (dataset, architecture, attack))
        path = out_dir / ("".join(c if c.isalnum() or c in "-_.=" else "_" for c in name) + ".png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
