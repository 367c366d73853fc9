"""Golden numbers: a refactor of the engine changes no result. Two guards, one exact and one tolerant.

**Scoring, exact** (``scoring-paper``, ``scoring-pool``). The models of these grids do
not train: ``golden-logits`` (tests/plugins/synthetic.py) fills a lookup network with
synthetic logits that are integers times a power of two, drawn with integer arithmetic,
so they are the same bits on every CPU. Everything after them is pinned: the splits
(integer permutations), predictions, attacks, thresholds and every metric of
results.csv and per_target.csv. The metrics (accuracies, AUC at full precision, TPRs,
intervals, balanced accuracy, counts) are compared bit for bit. The per-sample scores
and thresholds are compared through a summary (sums, quantiles) to ``SCORE_RTOL``
relative: torch's float64 kernels are vectorised per CPU, and emulating other CPUs here
(``ATEN_CPU_CAPABILITY=avx2``, as on an AMD EPYC without AVX-512, and ``default``) moved
the last bits of entropy and modified-entropy scores (and, without vector kernels, of
the loss) while every metric stayed bit for bit. numpy with its AVX-512 kernels off
(``NPY_DISABLE_CPU_FEATURES``) changed nothing. A change in what is computed moves a
score by far more than 1e-12.

**Training, within a measured tolerance** (``digits``, ``fashion-mnist``). Real float32
training gives other bits on another CPU and with another thread count (vector kernels
and reduction splits differ; an AMD EPYC machine gave AdvReg a test accuracy of 0.878
where this Intel one gives 0.895). These grids train for real and are compared with
their pinned accuracies and AUCs within ``TRAINED_TOLERANCE`` per row and
``TRAINED_MEAN_TOLERANCE`` on the mean over rows. The tolerances are about twice the
largest deviations measured over 1 and 2 threads and ATEN_CPU_CAPABILITY default, avx2
and avx512 on this machine (see the comment above ``TRAINED_TOLERANCE``): a bug that moves results (a loss,
a split, an attack's wiring) moves them far more.

Re-pinning after an intended change of results is one command, followed by a review of
the diff: ``python -m tests.test_golden``.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

HERE = Path(__file__).parent / "golden"
EXACT = ["scoring-paper", "scoring-pool"]
TRAINED = ["digits", "fashion-mnist"]

METRICS = ["train_acc", "test_acc", "auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr", "balanced_acc", "auc_low",
           "auc_high", "tpr_at_1pct_fpr_low", "tpr_at_1pct_fpr_high", "fp_at_0_1pct_fpr", "auc_target_mean",
           "auc_target_std", "tpr_at_1pct_fpr_target_mean", "n_members", "n_nonmembers"]

SUMMARIES = ("scores", "thresholds")  # per-sample values: equal to SCORE_RTOL; everything else bit for bit
SCORE_RTOL = 1e-12

# Largest |deviation| from the pinned values (2 threads, AVX-512) measured on this machine
# over 1 and 2 threads and ATEN_CPU_CAPABILITY default, avx2 and avx512, either grid:
# per row 0.0139 in accuracy (3 of 216 test samples of digits) and 0.0200 in AUC; over
# the mean of all rows 0.0013 and 0.0003. An AMD EPYC machine gave one AdvReg row 0.017
# of test accuracy. The tolerances are more than twice what was seen.
TRAINED_TOLERANCE = {"accuracy": 0.04, "auc": 0.05}
TRAINED_MEAN_TOLERANCE = {"accuracy": 0.01, "auc": 0.01}


def _number(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    value = float(value)
    return None if math.isnan(value) else value


def _summary(values: np.ndarray) -> list[float]:
    """Sum, sum of squares, and the 0, 10, 50, 90 and 100% quantiles of the finite values; the count of the rest."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return [float(len(values))]
    stats = [finite.sum(), (finite**2).sum(), *np.quantile(finite, [0, 0.1, 0.5, 0.9, 1])]
    return [float(v) for v in stats] + [float(len(values) - len(finite))]


def pinned_values(run_dir: Path) -> dict[str, dict]:
    """Per result row (and per-target row of a pool): its metrics, a digest of its scores by pool index."""
    out = {}
    tables = [("", run_dir / "results.csv"), ("per-target ", run_dir / "per_target.csv")]
    for prefix, path in tables:
        if not path.exists():
            continue
        frame = pd.read_csv(path)
        seen: dict[str, int] = {}
        for _, row in frame.iterrows():
            assert row.status == "ok", row.error
            with np.load(run_dir / "store" / "attacks" / f"{row.attack_output}.npz") as arrays:
                order = np.argsort(arrays["indices"], kind="stable")
                values = {"auc_exact": float(roc_auc_score(arrays["membership"], arrays["scores"])),
                      "scores": _summary(arrays["scores"][order]), "thresholds": _summary(arrays["thresholds"])}
            values.update({m: _number(row[m]) for m in METRICS if m in row})
            key = f"{prefix}{row.dataset}|{row.defense}|{row.seed}|{row.attack}"
            if prefix:  # a pool's per-target rows: the m-th target of each attack, in the table's order
                seen[key] = seen.get(key, -1) + 1
                key += f"|target {seen[key]}"
            out[key] = values
    return out


def run_grid(name: str, out: Path, threads: int = 2) -> None:
    from click.testing import CliRunner

    from mibench.cli.main import main

    result = CliRunner().invoke(main, ["run", str(HERE / f"{name}.yaml"), "--output", str(out), "--executor", "serial",
                                       "--threads-per-job", str(threads), "--no-report"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", EXACT)
def test_scoring_is_unchanged_bit_for_bit(name, tmp_path, cli_registry):
    out = tmp_path / name
    run_grid(name, out)
    expected = json.loads((HERE / f"{name}.json").read_text())
    actual = pinned_values(out)
    assert actual.keys() == expected.keys()
    for key, pinned in expected.items():
        got = actual[key]
        exact = {k: v for k, v in got.items() if k not in SUMMARIES}
        assert exact == {k: v for k, v in pinned.items() if k not in SUMMARIES}, key
        for summary in SUMMARIES:
            np.testing.assert_allclose(got[summary], pinned[summary], rtol=SCORE_RTOL, atol=0, err_msg=key)


def _trained_deviations(actual: dict[str, dict], expected: dict[str, dict]) -> dict[str, float]:
    """Largest per-row and mean-over-rows |actual - expected| of the accuracies and the AUCs."""
    assert actual.keys() == expected.keys()
    acc = [actual[k][m] - expected[k][m] for k in expected for m in ("train_acc", "test_acc")]
    auc = [actual[k]["auc_exact"] - expected[k]["auc_exact"] for k in expected]
    return {"accuracy": max(map(abs, acc)), "auc": max(map(abs, auc)),
            "mean_accuracy": abs(float(np.mean(acc))), "mean_auc": abs(float(np.mean(auc)))}


@pytest.mark.parametrize("name", TRAINED)
def test_trained_numbers_are_within_tolerance(name, tmp_path, cli_registry):
    out = tmp_path / name
    run_grid(name, out)
    expected = json.loads((HERE / f"{name}.json").read_text())
    deviation = _trained_deviations(pinned_values(out), expected)
    for what in ("accuracy", "auc"):
        assert deviation[what] <= TRAINED_TOLERANCE[what], deviation
        assert deviation[f"mean_{what}"] <= TRAINED_MEAN_TOLERANCE[what], deviation


def repin() -> None:
    """Run every golden grid afresh and rewrite its pinned values (review the diff before committing)."""
    from mibench.registry.loading import default_manager, set_registry
    from tests.plugins import blackbox, faulty, synthetic

    manager = default_manager()
    for module in (faulty, blackbox, synthetic):
        manager.register(module, name=module.__name__)
    set_registry(manager.build_registry())
    for name in EXACT + TRAINED:
        with tempfile.TemporaryDirectory() as tmp:
            run_grid(name, Path(tmp) / name)
            values = pinned_values(Path(tmp) / name)
        (HERE / f"{name}.json").write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
        print(f"pinned {len(values)} rows of {name}", file=sys.stderr)


if __name__ == "__main__":
    repin()
