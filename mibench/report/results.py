"""Result rows (one per target x attack), results.csv and the leaderboard.

The CSV header comes from :class:`ResultRow`'s fields, so a row can never carry a
column the header lacks, and every row carries its provenance.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mibench.engine.store import atomic_write


class ResultRow(BaseModel):
    """One attack against one target model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: str
    dataset: str
    architecture: str
    defense: str
    defense_name: str
    defense_params: str
    swept: str
    seed: int
    attack: str
    attack_name: str
    attack_params: str
    threshold_mode: str
    shadow_count: int
    shadow_training: str
    status: Literal["ok", "failed"]
    train_acc: float = math.nan
    test_acc: float = math.nan
    auc: float = math.nan
    tpr_at_1pct_fpr: float = math.nan
    tpr_at_0_1pct_fpr: float = math.nan
    balanced_acc: float = math.nan
    n_members: int = 0
    n_nonmembers: int = 0
    defense_info: str = "{}"
    error: str = ""
    config_hash: str
    target_model: str
    attack_output: str  # key of the attack's scores in store/attacks/ (for curves drawn later)
    mibench_version: str
    plugin_versions: str
    torch_version: str


COLUMNS = list(ResultRow.model_fields)
GROUP = ["dataset", "architecture", "defense", "shadow_training"]


def rows_frame(rows: list[ResultRow]) -> pd.DataFrame:
    return pd.DataFrame([r.model_dump() for r in rows], columns=COLUMNS)


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, architecture, defense config): accuracies and each attack's
    AUC, mean and standard deviation over seeds (the shape of the paper's Table 1).

    ``failed_cells`` counts the seeds of a config with any failed row; failed rows are
    left out of the means.
    """
    board = results.groupby(GROUP, sort=False).size().rename("rows").to_frame()
    failed = results[results["status"] == "failed"].groupby(GROUP)["seed"].nunique()  # cells: one per seed
    board["failed_cells"] = failed.reindex(board.index).fillna(0).astype(int)
    ok = results[results["status"] == "ok"]
    if not ok.empty:
        per_model = ok.drop_duplicates([*GROUP, "seed"])
        acc = per_model.groupby(GROUP, sort=False).agg(
            seeds=("seed", "nunique"),
            train_acc_mean=("train_acc", "mean"),
            train_acc_std=("train_acc", "std"),
            test_acc_mean=("test_acc", "mean"),
            test_acc_std=("test_acc", "std"),
        )
        auc = ok.pivot_table(index=GROUP, columns="attack", values="auc", aggfunc=["mean", "std"],
                             sort=False, dropna=False)
        auc.columns = [f"auc_{attack}_{stat}" for stat, attack in auc.columns]
        attacks = list(dict.fromkeys(ok["attack"]))
        board = board.join(acc).join(auc[[f"auc_{a}_{stat}" for a in attacks for stat in ("mean", "std")]])
    board = board.reset_index().drop(columns="rows")
    if "seeds" in board:
        board["seeds"] = board["seeds"].fillna(0).astype(int)
    failed = board.pop("failed_cells")
    board["failed_cells"] = failed
    return board


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.6g")
    atomic_write(path, buf.getvalue().encode())
