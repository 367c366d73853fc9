"""The leaderboard as text: a compact terminal table, CSV, Markdown or LaTeX in the paper's Table 1 shape.

Rows are (dataset, architecture, defense config); columns are test accuracy and, for
one chosen metric, each attack's value as ``mean ± std`` over seeds (the spread left
out with a single seed, where ``n=1`` says so).
"""

from __future__ import annotations

import io
import math

import pandas as pd

from mibench.report.results import METRICS, POPULATIONS

METRIC_CHOICES = {"auc": "auc", "tpr@1%": "tpr_at_1pct_fpr", "tpr@0.1%": "tpr_at_0_1pct_fpr",
                  "balanced-acc": "balanced_acc"}
WIDTH = 100
INTERVAL = r" \[-?[\d.]+, -?[\d.]+\]"  # a figure's " [low, high]" (the terminal table leaves it out)


def _value(mean: float, std: float, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def with_interval(row: pd.Series, column: str, digits: int = 3) -> str:
    """``row[column]`` with its 95% interval (``<column>_low``, ``<column>_high``) as 'v [low, high]'; '-' when NaN."""
    value = row[column]
    if pd.isna(value):
        return "-"
    return f"{value:.{digits}f} [{row[f'{column}_low']:.{digits}f}, {row[f'{column}_high']:.{digits}f}]"


def over_targets(row: pd.Series, column: str, digits: int = 3) -> str:
    """A pool row's mean ± standard deviation of ``column`` over its targets."""
    return _value(row[f"{column}_target_mean"], row[f"{column}_target_std"], digits)


def table_one(board: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """The leaderboard in Table 1's shape for ``metric`` (a key of METRIC_CHOICES): strings, one row a config."""
    prefix = METRICS[METRIC_CHOICES[metric]]
    attacks = list(dict.fromkeys(c[len(prefix) + 1 : -5] for c in board.columns
                                 if c.startswith(prefix + "_") and c.endswith("_mean")))
    rows = []
    for _, r in board.iterrows():
        row = {"dataset": r["dataset"], "model": r["architecture"], "defense": r["defense"],
               "protocol": r.get("protocol", "paper"), "seeds": int(r.get("seeds", 0) or 0), "test acc": _value(r.get("test_acc_mean"), r.get("test_acc_std"))}
        for attack in attacks:
            value = _value(r.get(f"{prefix}_{attack}_mean"), r.get(f"{prefix}_{attack}_std"))
            low, high = r.get(f"auc_{attack}_low"), r.get(f"auc_{attack}_high")
            if prefix == "auc" and int(r.get("seeds", 0) or 0) == 1 and pd.notna(low) and pd.notna(high):
                value += f" [{low:.3f}, {high:.3f}]"  # one seed: its 95% DeLong interval instead of a spread
            row[f"{attack} {metric}"] = value
        if "strongest_auc" in r and pd.notna(r["strongest_auc"]):
            row["strongest auc"] = f"{r['strongest_auc']:.3f} ({r['strongest_auc_attack']})"
            row["pareto"] = "*" if r.get("pareto") in (True, "True") else ""
        for population in POPULATIONS:  # a canary audit: the strongest attack on each population
            column = f"{population}_tpr01pct"
            if column in r and pd.notna(r[column]):
                row[f"{population} tpr@0.1%"] = f"{with_interval(r, column)} ({r[f'{column}_attack']})"
        for population in ("", "clean", "canary"):  # the empirical epsilon lower bounds (largest over attacks)
            column = f"{population}_eps_lower" if population else "eps_lower"
            if column in r and pd.notna(r[column]):
                row[f"{population + ' ' if population else ''}eps_lower"] = f"{r[column]:.2f}"
        if "accountant_epsilon" in r and pd.notna(r["accountant_epsilon"]):
            row["accountant eps"] = f"{r['accountant_epsilon']:.3g}"
        if isinstance(r.get("dp_baseline"), str):
            verdict = r.get("beats_dp_baseline")
            acc = r.get("dp_baseline_test_acc")
            row["dp-sgd baseline"] = (r["dp_baseline"] if pd.isna(acc) else
                                      f"{r['dp_baseline']} ({acc:.3f})" + (f": beats {verdict}" if isinstance(verdict, str) else ""))
        if "pareto_canary" in r and pd.notna(r.get("canary_tpr01pct")):
            row["pareto (canary)"] = "*" if r.get("pareto_canary") in (True, "True") else ""
        if int(r.get("conflicts", 0) or 0):
            row["note"] = f"{int(r['conflicts'])} conflicting rows"
        if int(r.get("failed_cells", 0) or 0):
            row["note"] = (row.get("note", "") + f" {int(r['failed_cells'])} failed cells").strip()
        rows.append(row)
    table = pd.DataFrame(rows)
    notes = table.pop("note") if "note" in table else None
    table = table.fillna("-")
    if notes is not None:
        table["note"] = notes  # NaN where there is nothing to say
    return table


def to_markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.fillna("").values]
    return "\n".join([header, rule, *body])


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$")):
        text = text.replace(a, b)
    return text


def to_latex(table: pd.DataFrame) -> str:
    cols = "llll" + "r" * (len(table.columns) - 4)
    lines = [rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(_latex_escape(str(c)) for c in table.columns) + r" \\", r"\midrule"]
    for row in table.fillna("").values:
        lines.append(" & ".join(_latex_escape(str(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_terminal(table: pd.DataFrame, width: int = WIDTH) -> str:
    """One table (rich) that fits ``width`` columns: labels and figures are folded within their cells, never cut."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    notes = table["note"] if "note" in table else None
    shown = table.drop(columns=["note"]) if notes is not None else table
    # What every row shares goes above the table; intervals stay in --format md / latex and the report.
    same = [c for c in ("dataset", "model", "protocol", "seeds") if c in shown and shown[c].nunique() == 1]
    caption = ", ".join(f"{c} {shown[c].iloc[0]}" for c in same)
    shown = shown.drop(columns=same).apply(lambda col: col.astype(str).str.replace(INTERVAL, "", regex=True))
    text_columns = {"dataset", "model", "defense", "protocol"}
    out = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                title=caption or None, title_justify="left")
    for column in shown.columns:  # every column kept; a long label or figure folds within its cell, never cut
        out.add_column(Text(str(column), overflow="fold"), overflow="fold",
                       justify="left" if column in text_columns else "right")
    for row in shown.itertuples(index=False):
        out.add_row(*[str(v) for v in row])
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True, soft_wrap=False)
    console.print(out)
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    if notes is not None:
        lines += [f"note: {d}: {n}" for d, n in zip(table["defense"], notes) if isinstance(n, str) and n]
    return "\n".join(lines).strip("\n")


def terminal_width() -> int:
    """The terminal's width where the output is one (at least 80 columns), else :data:`WIDTH`."""
    import shutil
    import sys

    if sys.stdout.isatty():
        return max(80, shutil.get_terminal_size((WIDTH, 24)).columns)
    return WIDTH


def render(board: pd.DataFrame, metric: str = "auc", fmt: str = "table") -> str:
    if fmt == "csv":
        return board.to_csv(index=False, float_format="%.6g")
    table = table_one(board, metric)
    if fmt == "md":
        return to_markdown(table)
    if fmt == "latex":
        return to_latex(table)
    return to_terminal(table, terminal_width())
