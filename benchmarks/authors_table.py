"""The README's "mibench's attacks against their authors' forms" table, from a run of
benchmarks/fmnist-attacks-authors.yaml.

    python -m benchmarks.authors_table RUN_DIR

Per defense and attack (LiRA, RMIA, label-only): the form mibench runs by default and the
authors' form (``preset: authors``), each with its AUC and TPR at 0.1% FPR pooled over the
targets (95% intervals: DeLong, Clopper-Pearson; they treat the pooled evaluations as
independent), and which is stronger at 0.1% FPR ("within noise" where the intervals
overlap). Then each defense's strongest attack without and with the authors' forms.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from mibench.report.tables import with_interval

PRESET = "preset=authors"


def stronger(default: pd.Series, authors: pd.Series, column: str = "tpr_at_0_1pct_fpr") -> str:
    """Which row is the stronger at ``column``, by its 95% interval; 'within noise' where they overlap."""
    if authors[f"{column}_low"] > default[f"{column}_high"]:
        return "authors'"
    if default[f"{column}_low"] > authors[f"{column}_high"]:
        return "mibench's"
    return "within noise"


def table(results: pd.DataFrame) -> str:
    ok = results[results["status"] == "ok"]
    lines = ["| defense | attack | mibench's: AUC | mibench's: TPR@0.1% | authors': AUC | authors': TPR@0.1% | "
             "stronger at 0.1% |", "|---|---|---|---|---|---|---|"]
    for defense, rows in ok.groupby("defense", sort=False):
        for name, family in rows.groupby("attack_name", sort=False):
            authors = family[family["attack"].str.contains(PRESET, regex=False)]
            default = family[~family["attack"].str.contains(PRESET, regex=False)]
            if not len(authors) or not len(default):
                continue
            a, d = authors.iloc[0], default.iloc[0]
            lines.append(f"| {defense} | {name} | {with_interval(d, 'auc')} | {with_interval(d, 'tpr_at_0_1pct_fpr', 4)}"
                         f" | {with_interval(a, 'auc')} | {with_interval(a, 'tpr_at_0_1pct_fpr', 4)} | "
                         f"{stronger(d, a)} |")
    return "\n".join(lines)


def strongest(results: pd.DataFrame) -> str:
    ok = results[results["status"] == "ok"]
    lines = ["| defense | strongest, mibench's forms: TPR@0.1% | strongest, with the authors' forms: TPR@0.1% |",
             "|---|---|---|"]
    for defense, rows in ok.groupby("defense", sort=False):
        before = rows[~rows["attack"].str.contains(PRESET, regex=False)]
        cells = []
        for frame in (before, rows):
            top = frame.loc[frame["tpr_at_0_1pct_fpr"].idxmax()]
            cells.append(f"{top['attack']}: {with_interval(top, 'tpr_at_0_1pct_fpr', 4)}")
        lines.append(f"| {defense} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    results = pd.read_csv(args.run / "results.csv")
    print(table(results))
    print()
    print(strongest(results))


if __name__ == "__main__":
    main()
