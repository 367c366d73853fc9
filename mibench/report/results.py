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
from pydantic_core import PydanticUndefined

from mibench.engine.store import atomic_write
from mibench.engine.uncertainty import MIN_FALSE_POSITIVES


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
    auc_low: float = math.nan  # 95% intervals: DeLong for the AUC, Clopper-Pearson for the TPRs
    auc_high: float = math.nan
    tpr_at_1pct_fpr_low: float = math.nan
    tpr_at_1pct_fpr_high: float = math.nan
    tpr_at_0_1pct_fpr_low: float = math.nan
    tpr_at_0_1pct_fpr_high: float = math.nan
    fp_at_0_1pct_fpr: int = 0  # non-members above the 0.1%-FPR threshold: what that TPR rests on
    tpr_at_0_1pct_fpr_resolvable: bool = False  # at least 5 false positives allowed at this size
    tpr_at_0_01pct_fpr: float = math.nan  # only with at least 10,000 non-members
    tpr_at_0_01pct_fpr_low: float = math.nan
    tpr_at_0_01pct_fpr_high: float = math.nan
    fp_at_0_01pct_fpr: int = 0
    protocol: str = "paper"  # 'pool': the metrics above are of the ROC pooled over the pool's targets
    population: str = ""  # a canary audit's samples the metrics are over: all, clean or canary ('': every sample)
    eps_lower: float = math.nan  # a pool's empirical epsilon lower bound on these samples (mibench.engine.epsilon)
    eps_method: str = ""  # one-run | threshold
    eps_delta: float = math.nan
    eps_confidence: float = math.nan  # per row: 1 - (1 - pool.epsilon.confidence) / attacks of the grid
    eps_choice: str = ""  # the threshold or guesses chosen on the other half of the targets
    accountant_epsilon: float = math.nan  # a DP defense's own (upper-bound) epsilon, from its training info
    targets: int = 1  # targets evaluated (the pool's models); the spread over them follows
    auc_target_mean: float = math.nan
    auc_target_std: float = math.nan
    tpr_at_1pct_fpr_target_mean: float = math.nan
    tpr_at_1pct_fpr_target_std: float = math.nan
    tpr_at_0_1pct_fpr_target_mean: float = math.nan
    tpr_at_0_1pct_fpr_target_std: float = math.nan
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
GROUP = ["dataset", "architecture", "defense", "shadow_training", "protocol"]


def rows_frame(rows: list[ResultRow]) -> pd.DataFrame:
    return pd.DataFrame([r.model_dump() for r in rows], columns=COLUMNS)


def with_defaults(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with the columns a newer mibench added filled with their defaults.

    Older runs' CSVs lack them; merged with newer ones, their rows hold NaN there, and
    a NaN grouping key (``protocol``) would drop them from the leaderboard silently.
    """
    defaults = {name: f.default for name, f in ResultRow.model_fields.items() if f.default is not PydanticUndefined}
    missing = {name: value for name, value in defaults.items() if name not in results}
    results = results.assign(**missing) if missing else results
    keys = {name: defaults[name] for name in GROUP if name in defaults and results[name].isna().any()}
    return results.fillna(keys) if keys else results


# Metric columns of the leaderboard: result column -> short prefix of its leaderboard columns.
METRICS = {"auc": "auc", "tpr_at_1pct_fpr": "tpr1pct", "tpr_at_0_1pct_fpr": "tpr01pct", "balanced_acc": "balacc"}


def population_of(results: pd.DataFrame) -> pd.Series:
    """Each row's ``population`` as text ('' where empty: every sample, or a run from before canary audits)."""
    if "population" not in results:
        return pd.Series("", index=results.index, dtype=object)
    column = results["population"].astype(object)
    return column.where(column.notna(), "").astype(str)


def leaderboard(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, architecture, defense config): accuracies and, per attack, its AUC, TPR at
    1% and 0.1% FPR and balanced accuracy, each as mean and standard deviation over seeds (the shape of
    the paper's Table 1): ``auc_<attack>_mean``, ``tpr1pct_<attack>_std``, ...

    ``failed_cells`` counts the seeds of a config with any failed row; failed rows are
    left out of the means. With merged runs, ``conflicts`` counts rows whose runs disagree.
    """
    results = with_defaults(results)
    results = results.assign(population=population_of(results))
    board = results.groupby(GROUP, sort=False).size().rename("rows").to_frame()
    failed = results[results["status"] == "failed"].groupby(GROUP)["seed"].nunique()  # cells: one per seed
    board["failed_cells"] = failed.reindex(board.index).fillna(0).astype(int)
    every = results[results["status"] == "ok"]
    ok = every[every["population"].isin(AVERAGE_CASE)]  # a canary audit's clean and canary rows: columns of their own
    if not every.empty:
        per_model = every.drop_duplicates([*GROUP, "seed"])
        acc = per_model.groupby(GROUP, sort=False).agg(
            seeds=("seed", "nunique"),
            train_acc_mean=("train_acc", "mean"),
            train_acc_std=("train_acc", "std"),
            test_acc_mean=("test_acc", "mean"),
            test_acc_std=("test_acc", "std"),
        )
        board = board.join(acc)
    if not ok.empty:
        attacks = list(dict.fromkeys(ok["attack"]))
        intervals = ok.pivot_table(index=GROUP, columns="attack", values=["auc_low", "auc_high"], aggfunc="mean",
                                   sort=False, dropna=False) if "auc_low" in ok else None
        if intervals is not None:  # with one seed, the AUC's own 95% interval (DeLong)
            intervals.columns = [f"auc_{attack}_{stat[4:]}" for stat, attack in intervals.columns]
        for column, prefix in METRICS.items():
            table = ok.pivot_table(index=GROUP, columns="attack", values=column, aggfunc=["mean", "std"],
                                   sort=False, dropna=False)
            table.columns = [f"{prefix}_{attack}_{stat}" for stat, attack in table.columns]
            board = board.join(table[[f"{prefix}_{a}_{stat}" for a in attacks for stat in ("mean", "std")]])
        if intervals is not None:
            board = board.join(intervals[[c for a in attacks for c in (f"auc_{a}_low", f"auc_{a}_high")
                                          if c in intervals]])
    board = board.reset_index().drop(columns="rows")
    if "seeds" in board:
        board["seeds"] = board["seeds"].fillna(0).astype(int)
    board = _privacy_columns(board, attacks if not ok.empty else [], resolvable=_resolvable(ok))
    board = _population_columns(board, every)
    board = _epsilon_columns(board, every)
    if "conflict" in results:
        conflicts = results[results["conflict"] == True].groupby(GROUP).size()  # noqa: E712 - a column of bools
        board["conflicts"] = conflicts.reindex(pd.MultiIndex.from_frame(board[GROUP])).fillna(0).astype(int).values
    failed = board.pop("failed_cells")
    board["failed_cells"] = failed
    return board


BASELINE = "ce"  # the plain-training defense whose test accuracy is the cost's reference

AVERAGE_CASE = ("", "all")  # the populations of the average-case columns (every evaluated sample)
POPULATIONS = ("clean", "canary")  # a canary audit's populations, each with its strongest-attack columns


def _population_columns(board: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    """A canary audit's headline: per population, the strongest attack's TPR at 0.1% FPR with its interval.

    ``<population>_tpr01pct`` (and ``_low``, ``_high``: the pooled ROC's 95% Clopper-Pearson
    interval, averaged over seeds; ``_attack``: which attack, over every attack and signal
    the grid ran) for ``clean`` and ``canary``; ``pareto_canary``: the Pareto front of test
    accuracy against canary TPR at 0.1% FPR within a dataset and architecture.
    """
    rows = ok[ok["population"].isin(POPULATIONS)]
    if rows.empty or board.empty:
        return board
    index = pd.MultiIndex.from_frame(board[GROUP])
    for population in POPULATIONS:
        part = rows[rows["population"] == population]
        if part.empty:
            continue
        means = part.groupby([*GROUP, "attack"], sort=False)[
            ["tpr_at_0_1pct_fpr", "tpr_at_0_1pct_fpr_low", "tpr_at_0_1pct_fpr_high"]].mean().reset_index()
        best = means.loc[means.groupby(GROUP, sort=False)["tpr_at_0_1pct_fpr"].idxmax()].set_index(GROUP)
        best = best.reindex(index)
        prefix = f"{population}_tpr01pct"
        board[prefix] = best["tpr_at_0_1pct_fpr"].to_numpy(dtype=float)
        board[f"{prefix}_low"] = best["tpr_at_0_1pct_fpr_low"].to_numpy(dtype=float)
        board[f"{prefix}_high"] = best["tpr_at_0_1pct_fpr_high"].to_numpy(dtype=float)
        board[f"{prefix}_attack"] = best["attack"].to_numpy(dtype=object)
    if "canary_tpr01pct" in board and "test_acc_mean" in board:
        board["pareto_canary"] = pareto_front(board, "canary_tpr01pct")
    return board


def _epsilon_columns(board: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    """Per population, the largest empirical epsilon lower bound over the attacks (``<population>_eps_lower``),
    and a DP defense's own epsilon (``accountant_epsilon``, from its training info).

    Each attack's bound is at 1 - (1 - confidence) / attacks (``pool.epsilon``), so the largest of
    them holds at the grid's confidence.
    """
    if board.empty or "eps_lower" not in ok or ok["eps_lower"].isna().all():
        return board
    index = pd.MultiIndex.from_frame(board[GROUP])
    for population in ("", *POPULATIONS):
        part = ok[ok["population"].isin(AVERAGE_CASE if population == "" else (population,))]
        if part.empty or part["eps_lower"].isna().all():
            continue
        column = f"{population}_eps_lower" if population else "eps_lower"
        best = part.groupby(GROUP, sort=False)["eps_lower"].max().reindex(index)
        board[column] = best.to_numpy(dtype=float)
    accountant = ok.groupby(GROUP, sort=False)["accountant_epsilon"].mean().reindex(index)
    board["accountant_epsilon"] = accountant.to_numpy(dtype=float)
    return _dp_baseline_columns(board)


NO_DP_BASELINE = "no DP-SGD config reaches this accuracy"


def _dp_baseline_columns(board: pd.DataFrame) -> pd.DataFrame:
    """Each heuristic config's DP-SGD baseline (Aerni et al. 2024): the DP config of the same dataset and
    architecture whose test accuracy is closest at or above its own.

    A DP config is one whose rows carry an accountant epsilon. ``beats_dp_baseline``: ``yes``
    where the config's canary TPR at 0.1% FPR interval lies wholly below the baseline's,
    ``no`` where wholly above, ``within noise`` where they overlap.
    """
    dp = board["accountant_epsilon"].notna()
    if not dp.any() or "test_acc_mean" not in board:
        return board
    names, accs, tprs, verdicts = [], [], [], []
    for i, row in board.iterrows():
        if dp.loc[i]:
            names.append(None), accs.append(math.nan), tprs.append(math.nan), verdicts.append(None)
            continue
        peers = board[dp & peers_of(board, row) & (board["test_acc_mean"] >= row["test_acc_mean"])]
        if peers.empty or pd.isna(row["test_acc_mean"]):
            names.append(NO_DP_BASELINE), accs.append(math.nan), tprs.append(math.nan), verdicts.append(None)
            continue
        base = peers.loc[peers["test_acc_mean"].idxmin()]
        names.append(base["defense"]), accs.append(float(base["test_acc_mean"]))
        tprs.append(float(base.get("canary_tpr01pct", math.nan)))
        verdicts.append(_verdict(row, base))
    board["dp_baseline"] = names
    board["dp_baseline_test_acc"] = accs
    board["dp_baseline_canary_tpr01pct"] = tprs
    board["beats_dp_baseline"] = verdicts
    return board


def _verdict(row: pd.Series, base: pd.Series) -> str | None:
    """yes / no / within noise: the config's canary TPR interval against its baseline's."""
    column = "canary_tpr01pct"
    if column not in row or pd.isna(row.get(column)) or pd.isna(base.get(column)):
        return None
    if row[f"{column}_high"] < base[f"{column}_low"]:
        return "yes"
    if row[f"{column}_low"] > base[f"{column}_high"]:
        return "no"
    return "within noise"


COMPARABLE = ["dataset", "architecture", "protocol"]  # rows a Pareto front, a baseline or a cost compares


def peers_of(board: pd.DataFrame, row: pd.Series) -> pd.Series:
    """Mask of the rows of ``board`` comparable with ``row``: one dataset, architecture and protocol (merged
    leaderboards hold several protocols, whose figures measure different things)."""
    mask = pd.Series(True, index=board.index)
    for column in COMPARABLE:
        if column in board:
            mask &= board[column] == row[column]
    return mask


def pareto_front(board: pd.DataFrame, leak: str) -> list[bool]:
    """Per row: no comparable config (:func:`peers_of`) has test accuracy at least as high and ``leak`` at least
    as low, one of them strictly (rows without a ``leak`` value are on no front)."""
    marks = []
    for _, row in board.iterrows():
        if pd.isna(row[leak]) or pd.isna(row["test_acc_mean"]):
            marks.append(False)
            continue
        peers = board[peers_of(board, row)]
        dominated = ((peers["test_acc_mean"] >= row["test_acc_mean"]) & (peers[leak] <= row[leak])
                     & ((peers["test_acc_mean"] > row["test_acc_mean"]) | (peers[leak] < row[leak])))
        marks.append(bool(not dominated.any()))
    return marks


def _argmax_attack(values: pd.DataFrame, prefix: str) -> pd.Series:
    """The attack of each row's highest value (None for a row with no value: all its cells failed)."""
    best = values.fillna(-float("inf")).idxmax(axis=1).str[len(prefix):-len("_mean")]
    return best.where(values.notna().any(axis=1), None)


NOT_RESOLVABLE = f"not resolvable: fewer than {MIN_FALSE_POSITIVES} false positives fit 0.1% FPR at this size"


def _resolvable(ok: pd.DataFrame) -> pd.DataFrame | None:
    """Per config (GROUP) and attack: whether its TPR at 0.1% FPR is resolvable in every seed."""
    if ok.empty or "tpr_at_0_1pct_fpr_resolvable" not in ok:
        return None
    flags = ok.assign(resolvable=ok["tpr_at_0_1pct_fpr_resolvable"].astype(str).eq("True"))
    return flags.pivot_table(index=GROUP, columns="attack", values="resolvable", aggfunc="min", sort=False)


def _privacy_columns(board: pd.DataFrame, attacks: list[str], baseline: str = BASELINE,
                     resolvable: pd.DataFrame | None = None) -> pd.DataFrame:
    """Privacy in one column, its accuracy cost, and the Pareto front.

    - ``strongest_auc`` / ``strongest_auc_attack``: the highest mean AUC over the attacks run;
      ``strongest_tpr01pct`` / ``..._attack``: the highest mean TPR at 0.1% FPR among the attacks
      whose figure is resolvable (``strongest_tpr01pct_unresolved``: the highest of all, with
      ``strongest_tpr01pct_note`` saying why it is not ranked, where none is).
    - ``acc_cost``: test accuracy of the ``ce`` row of the same dataset, architecture and
      protocol (plain training) minus this row's.
    - ``pareto``: no other config of the same dataset, architecture and protocol has a test
      accuracy at least as high and a strongest-attack AUC at least as low, one of them strictly.
    """
    if not attacks or "test_acc_mean" not in board:
        return board
    auc = board[[f"auc_{a}_mean" for a in attacks]]
    tpr = board[[f"tpr01pct_{a}_mean" for a in attacks]]
    board["strongest_auc"] = auc.max(axis=1)
    board["strongest_auc_attack"] = _argmax_attack(auc, "auc_")
    ranked = tpr
    if resolvable is not None:  # a figure that is not resolvable is never ranked
        flags = resolvable.reindex(pd.MultiIndex.from_frame(board[GROUP]))
        mask = pd.DataFrame({f"tpr01pct_{a}_mean": flags[a].to_numpy() if a in flags else False for a in attacks},
                            index=board.index).fillna(False).astype(bool)
        ranked = tpr.where(mask)
    board["strongest_tpr01pct"] = ranked.max(axis=1)
    board["strongest_tpr01pct_attack"] = _argmax_attack(ranked, "tpr01pct_")
    board["strongest_tpr01pct_unresolved"] = tpr.max(axis=1)
    board["strongest_tpr01pct_note"] = [NOT_RESOLVABLE if pd.isna(r) and pd.notna(u) else None
                                        for r, u in zip(board["strongest_tpr01pct"], board["strongest_tpr01pct_unresolved"])]
    key = [c for c in COMPARABLE if c in board]
    plain = board[board["defense"] == baseline].groupby(key)["test_acc_mean"].first()
    reference = pd.MultiIndex.from_frame(board[key]).map(lambda k: plain.get(k, float("nan")))
    board["acc_cost"] = reference.to_numpy(dtype=float) - board["test_acc_mean"].to_numpy(dtype=float)
    board["pareto"] = pareto_front(board, "strongest_auc")
    return board


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.6g")
    atomic_write(path, buf.getvalue().encode())
