"""The README's canary-audit tables from a run of benchmarks/fmnist-canaries*.yaml.

    python -m benchmarks.canary_table RUN_DIR            # average case against canaries, per defense
    python -m benchmarks.canary_table RUN_DIR --dp       # each heuristic defense against its DP-SGD baseline

Every figure comes from the run's results.csv (the pooled rows over the 64 targets, with
their 95% Clopper-Pearson intervals, which treat the pooled evaluations as independent)
and its leaderboard (the strongest attack per population, the DP-SGD baselines).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mibench.report.merge import load_results, merge_results
from mibench.report.results import leaderboard
from mibench.report.tables import with_interval


def _strongest(results: pd.DataFrame, defense: str, population: str) -> pd.Series:
    rows = results[(results["defense"] == defense) & (results["population"] == population)
                   & (results["status"] == "ok")]
    return rows.loc[rows["tpr_at_0_1pct_fpr"].idxmax()]


def _number(value, digits: int = 2) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _rank(values: pd.Series) -> pd.Series:
    return values.rank(method="min").astype(int)


def audit_table(results: pd.DataFrame, board: pd.DataFrame) -> str:
    """Per defense: test accuracy, strongest AUC, strongest clean and canary TPR at 0.1% FPR, their ratio, ranks."""
    rows = []
    for _, b in board.iterrows():
        clean, canary = _strongest(results, b["defense"], "clean"), _strongest(results, b["defense"], "canary")
        rows.append({"defense": b["defense"], "test acc": b["test_acc_mean"], "auc": b["strongest_auc"],
                     "clean": clean, "canary": canary,
                     "ratio": canary["tpr_at_0_1pct_fpr"] / max(clean["tpr_at_0_1pct_fpr"], 1e-12),
                     "eps": b.get("canary_eps_lower")})
    frame = pd.DataFrame(rows)
    frame["clean rank"] = _rank(frame["clean"].map(lambda r: r["tpr_at_0_1pct_fpr"]))
    frame["canary rank"] = _rank(frame["canary"].map(lambda r: r["tpr_at_0_1pct_fpr"]))
    lines = ["| defense | test acc | strongest AUC (all) | clean TPR@0.1% [95% CI] (attack) | "
             "canary TPR@0.1% [95% CI] (attack) | canary / clean | rank clean / canary (1 = least leak) | "
             "canary eps_lower |", "|---|---|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        lines.append(f"| {r['defense']} | {r['test acc']:.3f} | {r['auc']:.3f} | "
                     f"{with_interval(r['clean'], 'tpr_at_0_1pct_fpr', 4)} ({r['clean']['attack']}) | "
                     f"{with_interval(r['canary'], 'tpr_at_0_1pct_fpr', 4)} ({r['canary']['attack']}) | "
                     f"{r['ratio']:.1f}x | {r['clean rank']} / {r['canary rank']} | {_number(r['eps'])} |")
    return "\n".join(lines)


def dp_table(board: pd.DataFrame) -> str:
    """Per heuristic config: accuracy, canary TPR and eps_lower, and the same for its DP-SGD baseline."""
    board = board.set_index("defense", drop=False)
    dp = board[board["accountant_epsilon"].notna()]
    lines = ["| defense | test acc | canary TPR@0.1% [95% CI] | canary eps_lower | DP-SGD baseline | its test acc | "
             "its canary TPR@0.1% [95% CI] | its eps_lower / accountant eps | beats DP-SGD? |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in board[board["accountant_epsilon"].isna()].iterrows():
        base = dp.loc[r["dp_baseline"]] if r["dp_baseline"] in dp.index else None
        head = (f"| {r['defense']} | {r['test_acc_mean']:.3f} | {with_interval(r, 'canary_tpr01pct', 4)} | "
                f"{r['canary_eps_lower']:.2f} | ")
        if base is None:
            lines.append(head + f"{r['dp_baseline']} | – | – | – | – |")
            continue
        lines.append(head + f"{base['defense']} | {base['test_acc_mean']:.3f} | {with_interval(base, 'canary_tpr01pct', 4)} | "
                     f"{base['canary_eps_lower']:.2f} / {base['accountant_epsilon']:.3g} | {r['beats_dp_baseline']} |")
    lines += ["", "| DP-SGD config | test acc | accountant eps | eps_lower (all / clean / canary) |", "|---|---|---|---|"]
    for _, r in dp.iterrows():
        lines.append(f"| {r['defense']} | {r['test_acc_mean']:.3f} | {r['accountant_epsilon']:.3g} | "
                     f"{r['eps_lower']:.2f} / {r['clean_eps_lower']:.2f} / {r['canary_eps_lower']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--dp", action="store_true", help="the DP-SGD baseline table")
    args = parser.parse_args()
    results = merge_results(load_results([args.run_dir]))
    board = leaderboard(results)
    print(dp_table(board) if args.dp else audit_table(results, board))


if __name__ == "__main__":
    main()
