"""One self-contained HTML report of one or several runs: no network, no JavaScript.

CSS is inline, figures are inline SVG drawn by matplotlib, tables are HTML. Every
number comes from the same frames as ``mibench leaderboard`` (the runs' results.csv,
merged, and the leaderboard computed from them), formatted the same way.

Sections: the run(s); the leaderboard; for pool-protocol runs, the spread over
targets; privacy-utility plots per dataset and architecture; log-log ROC curves per
(dataset, architecture, attack); member and non-member score histograms; the most
exposed training samples under each config's strongest attack; failed cells.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path

import pandas as pd

from mibench.engine.layout import RunLayout
from mibench.engine.store import Store
from mibench.report.merge import load_results, merge_results
from mibench.report.results import AVERAGE_CASE, population_of, GROUP, leaderboard
from mibench.report.tables import over_targets, table_one, with_interval

REPORT_NAME = "report.html"  # the file `mibench run` writes into its run directory
MAX_HISTOGRAMS = 40

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.pareto td { background: #eef8ee; } .mark { color: #1a7f37; font-weight: bold; }
.nr { color: #a40; font-size: .85em; } .note { color: #555; font-size: .9em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; } .figures figure { margin: 0; }
figure svg { max-width: 100%; height: auto; } pre.error { white-space: pre-wrap; margin: 0; font-size: .9em; }
.wide { overflow-x: auto; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; } dt { font-weight: bold; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _f(value: float, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _table(frame: pd.DataFrame, row_classes: list[str] | None = None, raw: set[str] = frozenset()) -> str:
    """An HTML table of strings; columns in ``raw`` hold HTML already, the rest is escaped."""
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = []
        for column, value in row.items():
            text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else value
            num = ' class="num"' if column not in ("dataset", "model", "defense", "protocol", "note", "error",
                                                   "source") else ""
            cells.append(f"<td{num}>{text if column in raw else _e(text)}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div>")


# ---------------------------------------------------------------------------------------------- the run


def _run_section(run_dirs: list[Path]) -> str:
    parts = []
    for run_dir in run_dirs:
        layout = RunLayout(run_dir)
        try:
            info = json.loads(layout.run_json.read_text())
        except (OSError, ValueError):
            info = {}
        seconds, models = 0.0, 0
        for path in sorted((layout.store_dir / "models").glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and isinstance(record.get("train_seconds"), (int, float)):
                seconds += float(record["train_seconds"])
                models += 1
        execution = info.get("execution") or {}
        device = str(info.get("device", "?")) + (f" ({info['device_name']})" if info.get("device_name") else "")
        items = [
            ("run directory", str(run_dir)),
            ("grid", (info.get("grid") or {}).get("name", "?")),
            ("started", info.get("started", "?")),
            ("mibench", info.get("mibench_version", "?")),
            ("torch", info.get("torch_version", "?")),
            ("python", info.get("python", "?")),
            ("device", device),
            ("executor", f"{execution.get('executor', '?')}, {execution.get('workers', '?')} worker(s), "
                         f"{execution.get('threads_per_job', '?')} thread(s) per job, devices "
                         f"{', '.join(map(str, execution.get('devices', []))) or '?'}"),
            ("training time", f"{seconds:.1f} s over {models} trained models (targets and shadows)"),
        ]
        per_kind: dict[str, list[float]] = {}
        try:
            for line in layout.jobs_log.read_text().splitlines():
                job = json.loads(line)
                if job.get("worker") and job.get("seconds") is not None:
                    per_kind.setdefault(job["kind"], []).append(float(job["seconds"]))
        except (OSError, ValueError):
            pass
        if per_kind:
            items.append(("time per job kind", ", ".join(f"{kind} {sum(v):.1f} s ({len(v)} jobs)"
                                                         for kind, v in sorted(per_kind.items()))))
        plan = info.get("plan")
        if isinstance(plan, dict):
            items.append(("plan", ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in plan.items())))
        parts.append("<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>")
    return "<h2>The run" + ("s" if len(run_dirs) > 1 else "") + "</h2>" + "".join(parts)


# ---------------------------------------------------------------------------------------------- leaderboard


def _cell_rows(merged: pd.DataFrame, board_row: pd.Series, attack: str) -> pd.DataFrame:
    ok = merged[merged["status"] == "ok"]
    mask = ok["attack"] == attack
    for column in GROUP:
        mask &= ok[column].astype(str) == str(board_row[column])
    return ok[mask]


def leaderboard_table(board: pd.DataFrame, merged: pd.DataFrame) -> pd.DataFrame:
    """Table 1 (AUC) with each single-seed AUC's 95% interval, plus TPR at 0.1% FPR per attack.

    Cells are HTML (strings escaped); a TPR resting on fewer than 5 allowed false positives in
    any of its rows is marked "not resolvable".
    """
    auc = table_one(board, "auc")
    tpr = table_one(board, "tpr@0.1%")
    attacks = [c[: -len(" auc")] for c in auc.columns if c.endswith(" auc") and c != "strongest auc"]
    out = auc.copy().astype(object)
    for i, (_, r) in enumerate(board.iterrows()):
        for attack in attacks:
            rows = _cell_rows(merged, r, attack)
            text = _e(auc.iloc[i][f"{attack} auc"])
            if len(rows) == 1 and int(r.get("seeds", 0) or 0) == 1:
                row = rows.iloc[0]
                if pd.notna(row.get("auc_low")) and pd.notna(row.get("auc_high")):
                    text = _e(f"{row['auc']:.3f} [{row['auc_low']:.3f}, {row['auc_high']:.3f}]")
            out.iat[i, out.columns.get_loc(f"{attack} auc")] = text
            column = f"{attack} tpr@0.1%"
            if column in tpr.columns:
                value = _e(tpr.iloc[i][column])
                resolvable = rows.get("tpr_at_0_1pct_fpr_resolvable", pd.Series(dtype=object))
                if len(rows) and not resolvable.astype(str).eq("True").all():
                    value += ' <span class="nr">not resolvable</span>'
                out[column] = out.get(column, pd.Series([""] * len(out), index=out.index, dtype=object))
                out.iat[i, out.columns.get_loc(column)] = value
        if "pareto" in out.columns:
            out.iat[i, out.columns.get_loc("pareto")] = ('<span class="mark">&#9733; Pareto</span>'
                                                         if auc.iloc[i]["pareto"] == "*" else "")
    for column in out.columns:
        if column not in {f"{a} auc" for a in attacks} | {f"{a} tpr@0.1%" for a in attacks} | {"pareto"}:
            out[column] = out[column].map(lambda v: "" if isinstance(v, float) and math.isnan(v) else _e(v))
    # Put the TPR columns right after the AUC columns.
    first = [c for c in out.columns if not c.endswith(" tpr@0.1%") and c not in ("strongest auc", "pareto", "note")]
    rest = [c for c in out.columns if c.endswith(" tpr@0.1%")] + [c for c in ("strongest auc", "pareto", "note")
                                                                  if c in out.columns]
    return out[first + rest]


def _leaderboard_section(board: pd.DataFrame, merged: pd.DataFrame) -> str:
    if board.empty or "test_acc_mean" not in board:
        return "<h2>Leaderboard</h2><p>No successful results.</p>"
    table = leaderboard_table(board, merged)
    classes = ["pareto" if str(p) == "True" else "" for p in board.get("pareto", [False] * len(board))]
    note = ("<p class=\"note\">AUC: mean ± std over seeds; with one seed, the AUC and its 95% DeLong interval. "
            "TPR at 0.1% FPR: marked <span class=\"nr\">not resolvable</span> where fewer than 5 false positives "
            "are allowed at that rate with this many non-members (the value rests on too few). "
            "&#9733; Pareto: no other config of the same dataset, architecture and protocol has a test accuracy at "
            "least as "
            "high and a strongest-attack AUC at least as low. "
            "In a canary audit, <em>clean</em> and <em>canary tpr@0.1%</em>: the strongest attack's TPR at 0.1% "
            "FPR over the clean samples and over the canaries alone, with its 95% interval and the attack (the "
            "best of every attack and signal run: choosing the best of k attacks on the same data is optimistic, "
            "see the README's canary audits); <em>pareto (canary)</em>: the front of test accuracy against that canary TPR.</p>")
    return "<h2>Leaderboard</h2>" + note + _table(table, classes, raw=set(table.columns))


# ---------------------------------------------------------------------------------------------- figures


def _configs(board: pd.DataFrame, merged: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with each config's ``defense_name`` and ``swept`` (from its result rows)."""
    first = merged.drop_duplicates(GROUP)[[*GROUP, "defense_name", "swept"]]
    for column in GROUP:
        first[column] = first[column].astype(str)
    keyed = board.copy()
    for column in GROUP:
        keyed[column] = keyed[column].astype(str)
    return keyed.merge(first, on=GROUP, how="left")


def _store_of(row: pd.Series, run_dirs: list[Path]) -> Store:
    """The store of the first run a merged row comes from.

    ``sources`` joins run directories with ", ", which a directory name may itself
    contain: match the given directories against it rather than split it.
    """
    sources = str(row.get("sources", "") or "")
    first = next((d for d in run_dirs if sources == str(d) or sources.startswith(f"{d}, ")), run_dirs[0])
    return RunLayout(Path(first)).store()


def _privacy_section(board: pd.DataFrame, merged: pd.DataFrame) -> tuple[str, int]:
    from mibench.report.figures import privacy_utility

    if board.empty or "strongest_auc" not in board:
        return "", 0
    configs = _configs(board, merged)
    figures = []
    configs = configs.assign(protocol=configs["protocol"] if "protocol" in configs else "paper")
    for (dataset, architecture, protocol), rows in configs.groupby(["dataset", "architecture", "protocol"],
                                                                   sort=False):
        rows = rows[rows["test_acc_mean"].notna()]
        if rows.empty:
            continue
        where = f"{dataset} / {architecture} / protocol {protocol}"
        svg = privacy_utility(rows, where)
        figures.append(f'<figure class="privacy-utility">{svg}<figcaption>{_e(where)}: '
                       "test accuracy against the strongest attack (sweeps joined in sweep order; "
                       "green: Pareto front)</figcaption></figure>")
    return "<h2>Privacy and utility</h2>" + "".join(figures), len(figures)


def _first_seed_rows(merged: pd.DataFrame) -> pd.DataFrame:
    ok = merged[merged["status"] == "ok"]
    if ok.empty:
        return ok
    seed = int(ok["seed"].min())
    return ok[ok["seed"] == seed]


def _roc_section(merged: pd.DataFrame, run_dirs: list[Path]) -> tuple[str, int]:
    from mibench.report.figures import roc_svg
    from mibench.report.plots import roc_points

    rows_all = _first_seed_rows(merged)
    if rows_all.empty:
        return "", 0
    seed = int(rows_all["seed"].iloc[0])
    figures, missing = [], []
    for (dataset, architecture, attack), rows in rows_all.groupby(["dataset", "architecture", "attack"], sort=False):
        try:
            svg = roc_svg(rows, lambda row: roc_points(_store_of(row, run_dirs), row["attack_output"]),
                          f"{attack} on {dataset} / {architecture}, seed {seed}")
        except (OSError, KeyError, ValueError) as exc:
            missing.append(f"{dataset} / {architecture} / {attack}: {type(exc).__name__}: {exc}")
            continue
        figures.append(f'<figure class="roc">{svg}</figure>')
    note = "".join(f'<p class="note">ROC not drawn: {_e(m)}</p>' for m in missing)
    return ("<h2>ROC curves (log-log)</h2>"
            f'<p class="note">Seed {seed}; one curve per defense config; dotted: chance.</p>'
            + note + '<div class="figures">' + "".join(figures) + "</div>"), len(figures)


def _histogram_section(merged: pd.DataFrame, run_dirs: list[Path], limit: int) -> tuple[str, int, int]:
    from mibench.report.figures import histograms

    rows_all = _first_seed_rows(merged)
    if rows_all.empty:
        return "", 0, 0
    seed = int(rows_all["seed"].iloc[0])
    figures, drawn, left_out = [], 0, 0
    for (dataset, architecture), rows in rows_all.groupby(["dataset", "architecture"], sort=False):
        attacks = list(dict.fromkeys(rows["attack"]))
        panels = []
        for _, row in rows.drop_duplicates(["defense", "attack"]).iterrows():
            if drawn + len(panels) >= limit:
                left_out += 1
                continue
            try:
                arrays = _store_of(row, run_dirs).load_arrays("attacks", row["attack_output"])
            except (OSError, KeyError, ValueError):
                left_out += 1
                continue
            panels.append((str(row["defense"]), str(row["attack"]), arrays["scores"], arrays["membership"]))
        if panels:
            figures.append(f'<figure class="histograms">{histograms(panels, attacks, f"{dataset} / {architecture}")}'
                           "</figure>")
            drawn += len(panels)
    note = f'<p class="note">Seed {seed}; red: members, blue: non-members (densities).</p>'
    if left_out:
        note += (f'<p class="note histograms-left-out">{left_out} histogram(s) left out: the page shows at most '
                 f"{limit} (or their stored scores could not be read).</p>")
    return "<h2>Attack scores: members and non-members</h2>" + note + "".join(figures), drawn, left_out


def _pool_section(merged: pd.DataFrame) -> str:
    """Pool-protocol rows: the pooled ROC's figures beside the mean and spread over the pool's targets."""
    ok = merged[(merged["status"] == "ok") & (merged["targets"] > 1)]
    if ok.empty:
        return ""

    frame = pd.DataFrame({
        "dataset": ok["dataset"], "model": ok["architecture"], "defense": ok["defense"], "seed": ok["seed"],
        "attack": ok["attack"],
        **({"population": ok["population"].fillna("")} if "population" in ok and ok["population"].notna().any()
           else {}),
        "targets": ok["targets"],
        "AUC pooled": [with_interval(r, "auc", 3) for _, r in ok.iterrows()],
        "AUC per target": [over_targets(r, "auc", 3) for _, r in ok.iterrows()],
        "TPR@0.1% pooled": [with_interval(r, "tpr_at_0_1pct_fpr", 4) for _, r in ok.iterrows()],
        "TPR@0.1% per target": [over_targets(r, "tpr_at_0_1pct_fpr", 4) for _, r in ok.iterrows()],
        "TPR@0.01% pooled": [with_interval(r, "tpr_at_0_01pct_fpr", 4) for _, r in ok.iterrows()],
    })
    note = ('<p class="note">Each row pools the ROC of every model of a model pool as the target '
            "(its 95% intervals treat the pooled evaluations as independent, which they are not: every sample "
            "is evaluated by every target); the mean ± standard deviation over targets is the honest spread.</p>")
    return '<h2>Model pool: pooled and per target</h2>' + note + '<div class="wide">' + _table(frame) + "</div>"


def _exposed_section(merged: pd.DataFrame, run_dirs: list[Path], top: int = 5) -> str:
    """The training samples each config's strongest attack (by TPR at 0.1% FPR) exposes most."""
    from mibench.engine.attacking import load_attack_output
    from mibench.report.exposure import exposure

    rows_all = _first_seed_rows(merged)
    if rows_all.empty:
        return ""
    parts, missing = [], []
    for _, rows in rows_all.groupby(["dataset", "architecture", "defense", "protocol"], sort=False):
        row = rows.loc[rows["tpr_at_0_1pct_fpr"].idxmax()]
        try:
            ranked = exposure(load_attack_output(_store_of(row, run_dirs), row["attack_output"])).head(top)
        except (OSError, KeyError, ValueError) as exc:
            missing.append(f"{row['defense']} / {row['attack']}: {type(exc).__name__}: {exc}")
            continue
        parts.append(pd.DataFrame({
            "dataset": row["dataset"], "model": row["architecture"], "defense": row["defense"],
            "protocol": row["protocol"], "attack": row["attack"], "sample": ranked["sample"], "label": ranked["label"],
            "evaluations": ranked["evaluations"], "caught at 0.1% FPR": ranked["caught_at_0_1pct"].map(_f),
            "median FPR": ranked["fpr_median"].map(lambda v: _f(v, 5)),
        }))
    note = (f'<p class="note">Seed {int(rows_all["seed"].iloc[0])}. Per config, its strongest attack by TPR at 0.1% '
            "FPR; a member's FPR is the share of non-members scoring at least as high (over a pool: the median "
            "over the targets that trained on it, and the share of them that catch it at 0.1% FPR). "
            "<code>mibench exposed RUN_DIR</code> lists more.</p>")
    note += "".join(f'<p class="note">Not listed: {_e(m)}</p>' for m in missing)
    table = _table(pd.concat(parts, ignore_index=True)) if parts else ""
    return "<h2>Most exposed training samples</h2>" + note + table


def _failed_section(merged: pd.DataFrame) -> str:
    failed = merged[merged["status"] != "ok"]
    if failed.empty:
        return "<h2>Failed cells</h2><p>None.</p>"
    frame = pd.DataFrame({
        "dataset": failed["dataset"], "model": failed["architecture"], "defense": failed["defense"],
        "seed": failed["seed"], "attack": failed["attack"], "error": failed["error"].fillna(""),
        "source": failed["sources"],
    })
    return f"<h2>Failed cells</h2><p>{len(frame)} result row(s) failed.</p>" + _table(frame)


# ---------------------------------------------------------------------------------------------- the page


def build_report(run_dirs: list[Path], max_histograms: int = MAX_HISTOGRAMS) -> str:
    """The HTML text of the report of ``run_dirs`` (RunReadError when a run's results cannot be read)."""
    run_dirs = [Path(d) for d in run_dirs]
    results = load_results(run_dirs)
    merged = merge_results(results)
    board = leaderboard(merged)
    names = []
    for run_dir in run_dirs:
        try:
            names.append(json.loads(RunLayout(run_dir).run_json.read_text())["grid"]["name"])
        except (OSError, ValueError, KeyError, TypeError):
            names.append(run_dir.name)
    title = "mibench report: " + ", ".join(dict.fromkeys(map(str, names)))
    # A canary audit's clean and canary rows reach the page through the leaderboard's columns and the pool
    # section; every other section shows the average-case rows (each population shares their scores).
    average = merged[population_of(merged).isin(AVERAGE_CASE)]
    privacy, _ = _privacy_section(board, merged)
    rocs, _ = _roc_section(average, run_dirs)
    hists, _, _ = _histogram_section(average, run_dirs, max_histograms)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="note">{len(results)} result rows from {len(run_dirs)} run(s); {len(board)} configs. '
        f"Written {_e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}.</p>",
        _run_section(run_dirs),
        _leaderboard_section(board, average),
        _pool_section(merged),
        privacy,
        rocs,
        hists,
        _exposed_section(average, run_dirs),
        _failed_section(merged),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(run_dirs: list[Path], path: Path, max_histograms: int = MAX_HISTOGRAMS) -> Path:
    """Build the report and write it to ``path`` atomically; returns the path."""
    from mibench.engine.store import atomic_write

    text = build_report(run_dirs, max_histograms)
    path = Path(path)
    atomic_write(path, text.encode("utf-8"))
    return path


__all__ = ["MAX_HISTOGRAMS", "REPORT_NAME", "build_report", "leaderboard_table", "write_report"]
