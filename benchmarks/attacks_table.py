"""The README's "Strongest attacks" table from the two runs of benchmarks/fmnist-attacks*.yaml.

    python -m benchmarks.attacks_table POOL_RUN_DIR PAPER_RUN_DIR

Per defense and attack: under the pool protocol, the metrics of the ROC pooled over the
16 targets with their 95% intervals (DeLong for the AUC, Clopper-Pearson for the TPRs;
they treat the pooled evaluations as independent, which they are not) and the mean ±
standard deviation over targets; under the paper's protocol, one target's metrics with
their intervals. Then each defense's strongest attack by TPR at 0.1% FPR under both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mibench.report.tables import over_targets, with_interval


def table(pool: pd.DataFrame, paper: pd.DataFrame) -> str:
    paper = paper.set_index(["defense", "attack"])
    lines = ["| defense | attack | pool: AUC | pool: TPR@1% | pool: TPR@0.1% | pool: TPR@0.01% | "
             "pool, per target: TPR@0.1% | paper: AUC | paper: TPR@1% | paper: TPR@0.1% |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for defense, rows in pool.groupby("defense", sort=False):
        for _, r in rows.iterrows():
            p = paper.loc[(defense, r["attack"])] if (defense, r["attack"]) in paper.index else None
            lines.append(
                f"| {defense} | {r['attack']} | {with_interval(r, 'auc')} | {with_interval(r, 'tpr_at_1pct_fpr')} | "
                f"{with_interval(r, 'tpr_at_0_1pct_fpr', 4)} | {with_interval(r, 'tpr_at_0_01pct_fpr', 4)} | "
                f"{over_targets(r, 'tpr_at_0_1pct_fpr', 4)} | "
                + (f"{with_interval(p, 'auc')} | {with_interval(p, 'tpr_at_1pct_fpr')} | {with_interval(p, 'tpr_at_0_1pct_fpr', 4)} |"
                   if p is not None else "– | – | – |"))
    return "\n".join(lines)


def accuracies(pool: pd.DataFrame, paper: pd.DataFrame) -> str:
    lines = ["| defense | pool: train acc (mean of 16) | pool: test acc | paper: train acc | paper: test acc |",
             "|---|---|---|---|---|"]
    for defense in dict.fromkeys(pool["defense"]):
        a = pool[pool["defense"] == defense].iloc[0]
        b = paper[paper["defense"] == defense]
        b = b.iloc[0] if len(b) else None
        lines.append(f"| {defense} | {a['train_acc']:.3f} | {a['test_acc']:.3f} | "
                     + (f"{b['train_acc']:.3f} | {b['test_acc']:.3f} |" if b is not None else "– | – |"))
    return "\n".join(lines)


def strongest(pool: pd.DataFrame, paper: pd.DataFrame) -> str:
    lines = ["| defense | pool: strongest attack, TPR@0.1% (pooled) | paper: strongest attack, TPR@0.1% |",
             "|---|---|---|"]
    for defense in dict.fromkeys(pool["defense"]):
        best = []
        for frame in (pool, paper):
            rows = frame[(frame["defense"] == defense) & (frame["status"] == "ok")]
            top = rows.loc[rows["tpr_at_0_1pct_fpr"].idxmax()] if len(rows) else None
            best.append("–" if top is None else f"{top['attack']}: {with_interval(top, 'tpr_at_0_1pct_fpr', 4)}")
        lines.append(f"| {defense} | {best[0]} | {best[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool_run", type=Path)
    parser.add_argument("paper_run", type=Path)
    args = parser.parse_args()
    pool = pd.read_csv(args.pool_run / "results.csv")
    paper = pd.read_csv(args.paper_run / "results.csv")
    print(accuracies(pool, paper))
    print()
    print(table(pool, paper))
    print()
    print(strongest(pool, paper))


if __name__ == "__main__":
    main()
