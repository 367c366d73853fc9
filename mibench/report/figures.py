"""Figures of a report as inline SVG: privacy-utility plots, log-log ROC curves, score histograms.

Every function returns the text of one ``<svg>`` element (no XML prolog), drawn by
matplotlib with text kept as text and ids salted per figure, so that several figures
can sit in one HTML page without their ids clashing.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from mibench.engine.uncertainty import MIN_FALSE_POSITIVES

_salt = itertools.count()
CANARY_FLOOR = 1e-4  # where the log-scale canary panel draws a TPR of 0


def _plt():
    from mibench.report.plots import pyplot

    return pyplot()


def to_svg(fig) -> str:
    """The figure as an inline ``<svg>`` element; the figure is closed."""
    import matplotlib

    plt = _plt()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"mibench-{next(_salt)}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask of the points that no other point beats: x at least as low and y at least as high, one strictly."""
    keep = []
    for i in range(len(x)):
        if np.isnan(x[i]) or np.isnan(y[i]):
            keep.append(False)
            continue
        dominated = (x <= x[i]) & (y >= y[i]) & ((x < x[i]) | (y > y[i]))
        keep.append(not bool(np.nan_to_num(dominated, nan=False).any()))
    return np.array(keep, dtype=bool)


def privacy_utility(configs: pd.DataFrame, title: str) -> str:
    """Test accuracy against the strongest attack's AUC (left) and its TPR at 0.1% FPR (right);
    in a canary audit a third panel: against the canaries' strongest TPR at 0.1% FPR, on a log scale.

    ``configs``: one row per defense config (leaderboard columns plus ``defense_name``, ``swept``),
    in grid order. A sweep's configs are joined by a line in that order; the Pareto front
    (lower privacy leak, higher accuracy) is a step line; every point is labelled by defense.
    """
    plt = _plt()
    panels = [("strongest_auc", "strongest-attack AUC"), ("strongest_tpr01pct", "strongest-attack TPR at 0.1% FPR")]
    if "canary_tpr01pct" in configs and configs["canary_tpr01pct"].notna().any():  # a canary audit
        panels.append(("canary_tpr01pct", "canaries: strongest TPR at 0.1% FPR (log)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    y = configs["test_acc_mean"].to_numpy(dtype=float)
    for ax, (column, label) in zip(axes[0], panels):
        if column not in configs:
            ax.set_visible(False)
            continue
        x = configs[column].to_numpy(dtype=float)
        if column == "canary_tpr01pct":  # log scale: a TPR of 0 is drawn at the floor
            x = np.maximum(x, CANARY_FLOOR)
            ax.set_xscale("log")
        swept = configs["swept"].map(lambda s: bool(json.loads(s)) if isinstance(s, str) and s.strip() else False)
        for (_name, _training), rows in configs[swept.to_numpy()].groupby(["defense_name", "shadow_training"], sort=False):
            if len(rows) > 1:
                ax.plot(rows[column], rows["test_acc_mean"], "-", color="0.6", linewidth=1, zorder=1)
        marks = {"strongest_auc": "pareto", "canary_tpr01pct": "pareto_canary"}.get(column)
        on_front = configs[marks].astype(str).eq("True").to_numpy() if marks in configs else _front(x, y)
        order = np.argsort(x[on_front])
        if on_front.any():
            ax.step(x[on_front][order], y[on_front][order], where="post", color="tab:green", linewidth=1.2,
                    label="Pareto front", zorder=2)
        if "accountant_epsilon" in configs:  # DP configs: the baseline curve a heuristic defense must beat
            dp = configs["accountant_epsilon"].notna().to_numpy() & np.isfinite(x) & np.isfinite(y)
            if dp.sum() >= 1:
                order_dp = np.argsort(y[dp])
                ax.plot(x[dp][order_dp], y[dp][order_dp], "--", color="tab:purple", linewidth=1.2, zorder=2,
                        label="DP-SGD baseline")
        unranked = f"{column}_unresolved"
        if unranked in configs:  # figures that are not resolvable: drawn grey, on no front, never ranked
            grey = configs[unranked].to_numpy(dtype=float)
            shown = np.isnan(x) & np.isfinite(grey) & np.isfinite(y)
            if shown.any():
                ax.scatter(grey[shown], y[shown], color="0.7", s=22, zorder=3,
                           label=f"not resolvable (< {MIN_FALSE_POSITIVES} false positives at 0.1% FPR)")
                for xi, yi, name in zip(grey[shown], y[shown], configs["defense"][shown]):
                    ax.annotate(str(name), (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=7,
                                color="0.55")
        ax.scatter(x[~on_front], y[~on_front], color="tab:blue", s=22, zorder=3, label="config")
        ax.scatter(x[on_front], y[on_front], color="tab:green", marker="D", s=26, zorder=3, label="on the front")
        for xi, yi, name in zip(x, y, configs["defense"]):
            if np.isfinite(xi) and np.isfinite(yi):
                ax.annotate(str(name), (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=7)
        ax.set(xlabel=label, ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return to_svg(fig)


def roc_svg(rows: pd.DataFrame, points: Callable[[pd.Series], tuple[np.ndarray, np.ndarray]], title: str) -> str:
    """One log-log ROC figure: a curve per row (``points(row)`` gives FPR, TPR) and the diagonal."""
    from mibench.report.plots import roc_figure

    return to_svg(roc_figure(rows, points, title))


def histograms(panels: list[tuple[str, str, np.ndarray, np.ndarray]], attacks: list[str], title: str) -> str:
    """Member and non-member score histograms: ``panels`` are (defense, attack, scores, membership),
    drawn in a grid of one row per defense and one column per attack."""
    plt = _plt()
    defenses = list(dict.fromkeys(p[0] for p in panels))
    fig, axes = plt.subplots(len(defenses), len(attacks), figsize=(2.6 * len(attacks), 1.9 * len(defenses)),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for defense, attack, scores, membership in panels:
        ax = axes[defenses.index(defense), attacks.index(attack)]
        ax.set_visible(True)
        scores = np.asarray(scores, dtype=float)
        member = np.asarray(membership).astype(bool)
        finite = np.isfinite(scores)
        values = scores[finite]
        bins = np.histogram_bin_edges(values, bins=30) if values.size else 10
        ax.hist(scores[finite & member], bins=bins, alpha=0.55, density=True, color="tab:red", label="members")
        ax.hist(scores[finite & ~member], bins=bins, alpha=0.55, density=True, color="tab:blue", label="non-members")
        ax.set_title(f"{defense}\n{attack}", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return to_svg(fig)
