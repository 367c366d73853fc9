"""The HTML report: self-contained, numbers equal to the CSVs, figures present, rendered by a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from mibench.cli.main import main
from mibench.report.page import REPORT_NAME, write_report

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

GRID = """
name: digits-report
seeds: [0]
device: cpu
datasets: [digits]
architectures: [{name: mlp, params: {hidden: [64]}}]
defenses: [ce, {name: label-smoothing, sweep: {epsilon: [0.05, 0.2]}}]
attacks: [loss, m-entropy]
training:
  epochs: 3
  batch_size: 64
  optimizer: {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 0.0}
shadow: {count: 2}
"""

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary found (apt-get install chromium)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, registry) -> Path:
    from mibench.config.resolve import load_grid
    from mibench.runner import Runner

    base = tmp_path_factory.mktemp("report")
    grid = base / "grid.yaml"
    grid.write_text(textwrap.dedent(GRID).lstrip())
    out = base / "run"
    Runner(load_grid(grid, registry), registry, out, log=lambda _: None).run()
    return out


@pytest.fixture(scope="module")
def page(run_dir) -> Path:
    return write_report([run_dir], run_dir.parent / "page" / "report.html")


def test_page_is_self_contained(page):
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    assert "<svg" in text


def test_every_leaderboard_row_and_numbers_equal_the_csvs(page, run_dir):
    text = page.read_text()
    board = pd.read_csv(run_dir / "leaderboard.csv")
    results = pd.read_csv(run_dir / "results.csv")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", text.split("<h2>Leaderboard</h2>")[1].split("<h2>")[0])[1:]
    assert len(rows) == len(board) == 3
    for body, (_, r) in zip(rows, board.iterrows()):
        assert f"<td>{r['defense']}</td>" in body
        assert f"{r['test_acc_mean']:.3f}" in body
        assert f"{r['strongest_auc']:.3f} ({r['strongest_auc_attack']})" in body
        assert ("Pareto" in body) == bool(r["pareto"])
        for attack in ("loss", "m-entropy"):
            row = results[(results["defense"] == r["defense"]) & (results["attack"] == attack)].iloc[0]
            assert f"{row['auc']:.3f} [{row['auc_low']:.3f}, {row['auc_high']:.3f}]" in body
            assert f"{r[f'auc_{attack}_mean']:.3f}" == f"{row['auc']:.3f}"
            assert f"{row['tpr_at_0_1pct_fpr']:.3f}" in body
    # 450 non-members allow no false positive at 0.1% FPR: every TPR there is marked.
    assert not results["tpr_at_0_1pct_fpr_resolvable"].any()
    assert text.count("not resolvable</span></td>") == 3 * 2


def test_run_section_and_figures(page, run_dir):
    import json

    text = page.read_text()
    info = json.loads((run_dir / "run.json").read_text())
    assert "digits-report" in text and info["torch_version"] in text and info["mibench_version"] in text
    seconds = sum(json.loads(p.read_text())["train_seconds"] for p in (run_dir / "store" / "models").glob("*.json"))
    assert f"{seconds:.1f} s over 9 trained models" in text
    jobs = [json.loads(line) for line in (run_dir / "jobs.jsonl").read_text().splitlines()]
    trains = [j["seconds"] for j in jobs if j["kind"] == "train"]
    assert len(trains) == 9 and f"train {sum(trains):.1f} s (9 jobs)" in text  # time per job kind
    # 1 privacy-utility figure (digits / mlp), 2 ROC figures (one per attack), 1 histogram grid.
    assert text.count("<svg") == 4
    assert text.count('<figure class="privacy-utility">') == 1
    assert text.count('<figure class="roc">') == 2
    assert text.count('<figure class="histograms">') == 1
    assert "strongest-attack AUC" in text and "strongest-attack TPR at 0.1% FPR" in text
    assert "Failed cells</h2><p>None." in text


def test_histograms_are_bounded(run_dir, tmp_path):
    text = write_report([run_dir], tmp_path / "r.html", max_histograms=4).read_text()
    assert "2 histogram(s) left out" in text


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *args],
                          capture_output=True, text=True, timeout=180)


@needs_chromium
def test_chromium_renders_the_dom(page, run_dir):
    dom = _chromium("--dump-dom", page.as_uri()).stdout
    board = pd.read_csv(run_dir / "leaderboard.csv")
    for defense in board["defense"]:
        assert f"<td>{defense}</td>" in dom
    assert dom.count("<svg") == 4
    assert "ROC curves" in dom


@needs_chromium
def test_chromium_screenshot_is_not_blank(page, tmp_path):
    import matplotlib.image

    shot = tmp_path / "out.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri())
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1200)
    assert (pixels != pixels[0, 0]).any(axis=-1).mean() > 0.01  # more than 1% of the pixels are not background


def test_run_writes_report_unless_no_report(cli_registry, tmp_path, run_dir):
    grid = tmp_path / "grid.yaml"
    grid.write_text(textwrap.dedent(GRID).lstrip())
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", str(grid), "--output", str(out), "--executor", "serial", "--no-report"])
    assert result.exit_code == 0, result.output
    assert not (out / REPORT_NAME).exists()
    result = CliRunner().invoke(main, ["run", str(grid), "--output", str(out), "--executor", "serial"])  # resumes
    assert result.exit_code == 0, result.output
    assert (out / REPORT_NAME).is_file() and f"report: {out / REPORT_NAME}" in result.output


def test_report_command(run_dir, tmp_path):
    out = tmp_path / "x.html"
    result = CliRunner().invoke(main, ["report", str(run_dir), str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "2 run(s)" in out.read_text()
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no results.csv" in result.output


def test_png_roc_command_still_works(run_dir):
    result = CliRunner().invoke(main, ["roc", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert len(list((run_dir / "plots").glob("roc-*.png"))) == 2


def test_labels_with_dollar_signs_are_drawn_as_plain_text():
    """A '$' in a name is not mathtext: an odd one used to raise inside matplotlib and lose the report."""
    import numpy as np
    import pandas as pd

    from mibench.report.figures import roc_svg

    rows = pd.DataFrame({"defense": ["cost $5 ^$_ {", "plain"], "auc": [0.6, 0.5], "n_nonmembers": [10, 10]})
    svg = roc_svg(rows, lambda row: (np.linspace(0, 1, 5), np.linspace(0, 1, 5)), "run $x^$ / seed 0")
    assert "cost $5 ^$_ {" in svg and "run $x^$ / seed 0" in svg


def test_a_run_directory_with_commas_spaces_and_accents_keeps_every_figure(run_dir, tmp_path):
    import shutil

    odd = tmp_path / "ré sult, run (1)"
    shutil.copytree(run_dir, odd)
    text = write_report([odd], tmp_path / "odd.html").read_text()
    assert text.count('<figure class="roc">') == 2 and text.count('<figure class="histograms">') == 1
    assert "histogram(s) left out" not in text and "could not be read" not in text
