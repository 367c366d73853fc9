"""The most exposed samples: which training samples an attack singles out, from its stored scores.

Every attack output in the store keeps one score per evaluated sample with the sample's
pool index and membership (a pool's pooled output also says which target each row came
from). A member's *exposure* under one target is the false-positive rate an attacker
would accept to call it a member: the share of that target's non-members that score at
least as high. Over a pool a sample is a member of several targets; its exposure is the
median over them, and ``caught_at_0_1pct`` the share of them in which it is called a
member at 0.1% FPR. Samples are ranked most exposed first (caught more often, then lower
median FPR). In a canary audit canaries and clean samples are listed apart (``population``),
each member ranked against the non-members of its own population, as the rows' metrics are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mibench.engine.attacking import load_attack_output
from mibench.engine.layout import RunLayout
from mibench.engine.metrics import select_rows

EXPOSED_COLUMNS = ["dataset", "architecture", "defense", "seed", "attack", "protocol", "population", "rank", "sample",
                   "label", "evaluations", "caught_at_0_1pct", "fpr_median", "fpr_min"]


def member_fpr(scores: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """For each member (in order), the share of non-members scoring at least as high as it."""
    nonmember = np.sort(scores[~membership])
    if len(nonmember) == 0:
        raise ValueError("no non-members to compare with")
    at_least = len(nonmember) - np.searchsorted(nonmember, scores[membership], side="left")
    return at_least / len(nonmember)


def exposure(output: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per member sample of one (possibly pooled) attack output: evaluations, caught share, median and min FPR."""
    membership = output["membership"].astype(bool)
    target = output["target"] if "target" in output else np.zeros(len(membership), dtype=np.int64)
    parts = []
    for t in np.unique(target):
        rows = target == t
        fpr = member_fpr(output["scores"][rows], membership[rows])
        parts.append(pd.DataFrame({"sample": output["indices"][rows][membership[rows]],
                                   "label": output["labels"][rows][membership[rows]], "fpr": fpr}))
    members = pd.concat(parts)
    per_sample = members.groupby("sample").agg(
        label=("label", "first"),
        evaluations=("fpr", "size"),
        caught_at_0_1pct=("fpr", lambda f: float((f <= 0.001).mean())),
        fpr_median=("fpr", "median"),
        fpr_min=("fpr", "min"),
    ).reset_index()
    return per_sample.sort_values(["caught_at_0_1pct", "fpr_median", "fpr_min", "sample"],
                                  ascending=[False, True, True, True], kind="stable").reset_index(drop=True)


def most_exposed(run_dir: Path, top: int = 20, attack: str | None = None, defense: str | None = None) -> pd.DataFrame:
    """The ``top`` most exposed samples of each ok row of ``run_dir``'s results.csv (filtered by attack/defense label)."""
    layout = RunLayout(run_dir)
    results = pd.read_csv(layout.results_csv)
    rows = results[results["status"] == "ok"]
    if attack is not None:
        rows = rows[rows["attack"] == attack]
    if defense is not None:
        rows = rows[rows["defense"] == defense]
    store = layout.store()
    tables = []
    for _, row in rows.iterrows():
        output = load_attack_output(store, str(row["attack_output"]))
        population = row.get("population", "")
        population = "" if not isinstance(population, str) else population
        if "canary" in output:  # a canary audit: canaries and clean samples apart, each against its own kind
            if population not in ("clean", "canary"):
                continue
            output = select_rows(output, output["canary"].astype(bool) == (population == "canary"))
        ranked = exposure(output).head(top)
        ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
        for column in ("dataset", "architecture", "defense", "seed", "attack"):
            ranked[column] = row[column]
        ranked["protocol"] = row.get("protocol", "paper")
        ranked["population"] = population
        tables.append(ranked)
    if not tables:
        return pd.DataFrame(columns=EXPOSED_COLUMNS)
    return pd.concat(tables, ignore_index=True)[EXPOSED_COLUMNS]
