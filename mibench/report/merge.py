"""Several runs' results as one table: a config run twice is one row, or a flagged conflict.

Rows are matched by ``config_hash``, which covers the dataset, architecture, defense
and attack configs with their plugin versions and code digests, the training
settings, the split and the seed. So rows from different mibench or plugin versions,
or different code, never merge: they stay apart, and their ``mibench_version`` and
``plugin_versions`` columns say why. Two rows with one hash and the same numbers are
one row (its ``sources`` lists every run); with different numbers, both are kept and
marked ``conflict`` (the same config cannot honestly give two answers: a GPU and a
CPU run, or a changed environment).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mibench.engine.layout import RunLayout
from mibench.report.results import with_defaults

NUMBERS = ["train_acc", "test_acc", "auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr", "balanced_acc"]


# In a row with status ok, these are never empty: an empty one means a damaged or cut file.
REQUIRED_OK = ("seed", "dataset", "architecture", "attack", "defense", "auc", "n_nonmembers", "attack_output")


class RunReadError(Exception):
    """A run directory whose results cannot be read; the message names it."""


TABLE_NUMBERS = (*NUMBERS, "seed", "n_nonmembers")  # the numeric columns every reader checks


def table_problem(frame: pd.DataFrame, numbers: tuple[str, ...] = TABLE_NUMBERS) -> str | None:
    """Why a results table read from disk is damaged, in a few words (None when it is sound).

    The one check every reader of results.csv applies (leaderboard, report, roc, exposed):
    an ok row with an empty required field (a file cut in the middle of a line), and a
    numeric column holding text.
    """
    if "status" in frame:
        ok = frame[frame["status"] == "ok"]
        required = [c for c in REQUIRED_OK if c in frame.columns]
        incomplete = ok[ok[required].isna().any(axis=1)]
        if not incomplete.empty:
            return f"line {incomplete.index[0] + 2} is incomplete (the file looks truncated)"
    for column in [c for c in numbers if c in frame.columns]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[values.isna() & frame[column].notna()]
        if not bad.empty:
            shown = repr(str(bad[column].iloc[0]))[:40]
            return f"line {bad.index[0] + 2}: column {column} holds {shown}, not a number"
    return None


def load_results(run_dirs: list[Path]) -> pd.DataFrame:
    """Every run's results.csv, with a ``source`` column naming its run directory."""
    frames = []
    for run_dir in run_dirs:
        path = RunLayout(run_dir).results_csv
        try:
            frame = pd.read_csv(path)
        except FileNotFoundError:
            raise RunReadError(f"{run_dir}: no results.csv here; give the output directory of a mibench run") from None
        except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise RunReadError(f"{path}: cannot be read ({' '.join(str(exc).split())[:200]})") from None
        missing = {"config_hash", "status", *NUMBERS} - set(frame.columns)
        if missing:
            raise RunReadError(f"{path}: not a mibench results table (missing {', '.join(sorted(missing))})")
        problem = table_problem(frame)
        if problem is not None:
            raise RunReadError(f"{path}: {problem}")
        frames.append(with_defaults(frame).assign(source=str(run_dir)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _same(rows: pd.DataFrame) -> bool:
    numbers = rows[NUMBERS].round(12)
    return bool((numbers.nunique(dropna=False) <= 1).all())


def merge_results(results: pd.DataFrame) -> pd.DataFrame:
    """One row per config hash where the runs agree; every row, marked ``conflict``, where they do not.

    Adds ``sources`` (the runs a row comes from, joined by ", ") and ``conflict``.
    """
    out = []
    for _, rows in results[results["status"] == "ok"].groupby("config_hash", sort=False):
        if len(rows) == 1 or _same(rows):
            row = rows.iloc[0].copy()
            row["sources"] = ", ".join(dict.fromkeys(rows["source"]))
            row["conflict"] = False
            out.append(row)
            continue
        for _, row in rows.iterrows():
            row = row.copy()
            row["sources"] = row["source"]
            row["conflict"] = True
            out.append(row)
    failed = results[results["status"] != "ok"]
    failed = failed[~failed["config_hash"].isin(results.loc[results["status"] == "ok", "config_hash"])]
    for _, row in failed.drop_duplicates("config_hash").iterrows():
        row = row.copy()
        row["sources"], row["conflict"] = row["source"], False
        out.append(row)
    merged = pd.DataFrame(out).reset_index(drop=True)
    return merged.drop(columns=["source"])
