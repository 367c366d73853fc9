"""``mibench leaderboard``: merged runs (one row per config, conflicts flagged, versions apart) and the
paper-shaped tables (issue 11)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from mibench.cli.main import main
from mibench.config.resolve import load_grid
from mibench.report.merge import load_results, merge_results
from mibench.report.results import leaderboard
from mibench.runner import Runner
from tests.grids import digits_grid

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

GRID = digits_grid(seeds="[0, 1]", epochs=3)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, registry):
    out = tmp_path_factory.mktemp("lb") / "run"
    path = out.parent / "grid.yaml"
    path.write_text(GRID)
    assert Runner(load_grid(path, registry), registry, out, log=lambda _: None).run().ok
    return out


def test_two_runs_merge_identical_rows_and_flag_a_changed_number(finished_run, tmp_path):
    other = tmp_path / "colleague"
    shutil.copytree(finished_run, other)
    rows = pd.read_csv(other / "results.csv")
    changed = rows.index[(rows["attack"] == "loss") & (rows["seed"] == 1)][0]
    rows.loc[changed, "auc"] = rows.loc[changed, "auc"] + 0.01
    rows.to_csv(other / "results.csv", index=False)

    merged = merge_results(load_results([finished_run, other]))
    assert len(merged) == 6 + 1  # 6 configs (2 seeds x 3 attacks) agree; the changed one is kept twice
    conflict = merged[merged["conflict"]]
    assert len(conflict) == 2 and set(conflict["attack"]) == {"loss"} and set(conflict["seed"]) == {1}
    assert set(conflict["sources"]) == {str(finished_run), str(other)}
    agreed = merged[~merged["conflict"]]
    assert set(agreed["sources"]) == {f"{finished_run}, {other}"}
    board = leaderboard(merged)
    assert board.loc[0, "conflicts"] == 2

    result = CliRunner().invoke(main, ["leaderboard", str(finished_run), str(other)])  # output: stdout and stderr
    assert result.exit_code == 0, result.output
    assert "12 rows from 2 runs -> 7 rows" in result.output
    assert "conflict: digits / mlp(hidden=[64]) / ce / seed 1 / loss: auc" in result.output


def test_rows_of_another_version_stay_apart(finished_run, tmp_path):
    other = tmp_path / "older"
    shutil.copytree(finished_run, other)
    rows = pd.read_csv(other / "results.csv")
    rows["mibench_version"] = "0.1.0"
    rows["config_hash"] = rows["config_hash"] + "-0.1"  # another version hashes differently
    rows.to_csv(other / "results.csv", index=False)
    merged = merge_results(load_results([finished_run, other]))
    assert len(merged) == 12 and not merged["conflict"].any()
    result = CliRunner().invoke(main, ["leaderboard", str(finished_run), str(other)])
    assert "mibench versions 0.1.0, 0.2.0 kept apart" in result.output


def test_markdown_and_latex_have_the_paper_table_shape(finished_run):
    md = CliRunner().invoke(main, ["leaderboard", str(finished_run), "--format", "md", "--metric", "tpr@0.1%"])
    lines = md.output.strip().splitlines()
    assert lines[0] == ("| dataset | model | defense | protocol | seeds | test acc | loss tpr@0.1% | entropy tpr@0.1% | "
                        "m-entropy tpr@0.1% | strongest auc | pareto |")
    assert lines[1].count("---") == 11 and lines[2].startswith("| digits | mlp(hidden=[64]) | ce | paper | 2 | ")
    assert " ± " in lines[2]
    latex = CliRunner().invoke(main, ["leaderboard", str(finished_run), "--format", "latex"]).output
    assert latex.startswith("\\begin{tabular}{llllrrrrrrr}") and "$\\pm$" in latex and latex.rstrip().endswith(
        "\\end{tabular}")
    board = pd.read_csv(finished_run / "leaderboard.csv")
    mean = board.loc[0, "auc_loss_mean"]
    assert f"{mean:.3f} ±" in CliRunner().invoke(main, ["leaderboard", str(finished_run), "--format", "md"]).output


def test_the_terminal_table_fits_100_columns(finished_run):
    result = CliRunner().invoke(main, ["leaderboard", str(finished_run)])
    assert result.exit_code == 0
    assert max(len(line) for line in result.output.splitlines()) <= 100
    lines = result.output.splitlines()
    assert sum(line.startswith("───") for line in lines) == 1  # one table, not blocks stacked
    assert "…" not in result.output and lines[0] == "dataset digits, model mlp(hidden=[64]), protocol paper, seeds 2"


def test_a_directory_without_results_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["leaderboard", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path}: no results.csv here; give the output directory of a mibench run"


def test_strongest_attack_accuracy_cost_and_pareto_front():
    rows = []
    for defense, acc, aucs in (("ce", 0.90, (0.60, 0.70)), ("a", 0.85, (0.55, 0.58)), ("b", 0.80, (0.56, 0.59)),
                               ("c", 0.88, (0.62, 0.61))):
        for attack, auc in zip(("loss", "lira"), aucs):
            rows.append({"dataset": "d", "architecture": "m", "defense": defense, "shadow_training": "adaptive",
                         "seed": 0, "attack": attack, "status": "ok", "train_acc": 1.0, "test_acc": acc,
                         "auc": auc, "tpr_at_1pct_fpr": 0.0, "tpr_at_0_1pct_fpr": auc / 10, "balanced_acc": 0.5})
    board = leaderboard(pd.DataFrame(rows)).set_index("defense")
    assert board["strongest_auc"].to_dict() == {"ce": 0.70, "a": 0.58, "b": 0.59, "c": 0.62}
    assert board["strongest_auc_attack"].to_dict() == {"ce": "lira", "a": "lira", "b": "lira", "c": "loss"}
    assert board["acc_cost"].round(6).to_dict() == {"ce": 0.0, "a": 0.05, "b": 0.10, "c": 0.02}
    # b is beaten by a on both (more accurate, less leaky); ce, a and c each win somewhere
    assert board["pareto"].to_dict() == {"ce": True, "a": True, "b": False, "c": True}


def test_merged_protocols_are_compared_within_their_own_protocol():
    rows = []
    for protocol, defense, acc, auc in (("paper", "ce", 0.90, 0.70), ("paper", "a", 0.85, 0.58),
                                        ("pool", "ce", 0.95, 0.55), ("pool", "a", 0.93, 0.52)):
        rows.append({"dataset": "d", "architecture": "m", "defense": defense, "shadow_training": "adaptive",
                     "protocol": protocol, "seed": 0, "attack": "loss", "status": "ok", "train_acc": 1.0,
                     "test_acc": acc, "auc": auc, "tpr_at_1pct_fpr": 0.0, "tpr_at_0_1pct_fpr": 0.0,
                     "balanced_acc": 0.5})
    board = leaderboard(pd.DataFrame(rows)).set_index(["protocol", "defense"])
    # across protocols the pool's ce row would beat paper's ce and a; within each protocol both are on the front
    assert board["pareto"].to_dict() == {("paper", "ce"): True, ("paper", "a"): True, ("pool", "ce"): True,
                                         ("pool", "a"): True}
    assert board["acc_cost"].round(6).to_dict() == {("paper", "ce"): 0.0, ("paper", "a"): 0.05,
                                                   ("pool", "ce"): 0.0, ("pool", "a"): 0.02}
    from mibench.report.tables import table_one

    table = table_one(board.reset_index())
    assert list(table.columns[:5]) == ["dataset", "model", "defense", "protocol", "seeds"]
    assert table["protocol"].tolist() == ["paper", "paper", "pool", "pool"]


def test_a_tpr_that_is_not_resolvable_is_never_ranked():
    rows = []
    for defense, acc, figures in (("ce", 0.90, {"loss": (0.30, False), "lira": (0.10, True)}),
                                  ("a", 0.85, {"loss": (0.20, False), "lira": (0.05, False)})):
        for attack, (tpr, resolvable) in figures.items():
            rows.append({"dataset": "d", "architecture": "m", "defense": defense, "shadow_training": "adaptive",
                         "seed": 0, "attack": attack, "status": "ok", "train_acc": 1.0, "test_acc": acc,
                         "auc": 0.6, "tpr_at_1pct_fpr": 0.0, "tpr_at_0_1pct_fpr": tpr, "balanced_acc": 0.5,
                         "tpr_at_0_1pct_fpr_resolvable": resolvable})
    board = leaderboard(pd.DataFrame(rows)).set_index("defense")
    assert board.loc["ce", "strongest_tpr01pct"] == 0.10 and board.loc["ce", "strongest_tpr01pct_attack"] == "lira"
    assert pd.isna(board.loc["a", "strongest_tpr01pct"]) and board.loc["a", "strongest_tpr01pct_unresolved"] == 0.20
    assert board.loc["a", "strongest_tpr01pct_note"] == ("not resolvable: fewer than 5 false positives fit 0.1% FPR "
                                                         "at this size")
    assert pd.isna(board.loc["ce", "strongest_tpr01pct_note"])
    from mibench.report.figures import privacy_utility

    configs = board.reset_index().assign(defense_name=["ce", "a"], swept="")
    assert "not resolvable (&lt; 5 false positives at 0.1% FPR)" in privacy_utility(configs, "d / m")


def test_a_run_from_before_the_pool_protocol_keeps_its_rows(finished_run, tmp_path):
    # results.csv of an older mibench: no protocol or pool columns. Merged with a new run, its
    # rows must not vanish from the leaderboard (a NaN protocol would drop them from groupby),
    # and its report must build.
    older = tmp_path / "older"
    shutil.copytree(finished_run, older)
    rows = pd.read_csv(older / "results.csv")
    rows = rows.drop(columns=[c for c in rows.columns if c == "protocol" or "target_" in c or "0_01pct" in c
                              or c == "targets"])
    rows["mibench_version"] = "0.1.0"
    rows["config_hash"] = rows["config_hash"] + "-0.1"
    rows["defense"] = "ce (0.1.0)"
    rows.to_csv(older / "results.csv", index=False)
    merged = merge_results(load_results([finished_run, older]))
    assert (merged["protocol"] == "paper").all()
    board = leaderboard(merged)
    assert board["defense"].tolist() == ["ce", "ce (0.1.0)"]
    assert (board["seeds"] == 2).all() and (board["protocol"] == "paper").all()
    result = CliRunner().invoke(main, ["report", str(older)])
    assert result.exit_code == 0, result.output
