"""Golden numbers: two small grids whose every score and metric was pinned before the engine
was restructured (issue 8). A refactor that changes any number, bit for bit, fails here.

Each row is compared by its full-precision AUC, by a digest of its per-sample scores
ordered by pool index (so the order in which an attack sees its samples does not
matter), and by its accuracies. To re-pin after an intended change of results, run
``python -m tests.test_golden RUN_DIR`` on a fresh run of the grid and review the diff.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).parent / "golden"


def pinned_values(run_dir: Path) -> dict[str, dict]:
    """Per result row: full-precision AUC, digest of the scores by pool index, accuracies."""
    results = pd.read_csv(run_dir / "results.csv")
    out = {}
    for _, row in results.iterrows():
        assert row.status == "ok", row.error
        with np.load(run_dir / "store" / "attacks" / f"{row.attack_output}.npz") as arrays:
            order = np.argsort(arrays["indices"], kind="stable")
            scores = np.ascontiguousarray(arrays["scores"][order], dtype=np.float64)
            auc = float(roc_auc_score(arrays["membership"], arrays["scores"]))
        out[f"{row.dataset}|{row.defense}|{row.seed}|{row.attack}"] = {
            "auc": auc,
            "scores_sha": hashlib.sha256(scores.tobytes()).hexdigest()[:16],
            "train_acc": float(row.train_acc),
            "test_acc": float(row.test_acc),
            "balanced_acc": None if np.isnan(row.balanced_acc) else float(row.balanced_acc),
        }
    return out


@pytest.mark.parametrize("name", ["digits", "fashion-mnist"])
def test_numbers_are_unchanged(name, tmp_path, cli_registry):
    from click.testing import CliRunner

    from mibench.cli.main import main

    out = tmp_path / name
    result = CliRunner().invoke(main, ["run", str(HERE / f"{name}.yaml"), "--output", str(out), "--executor", "serial",
                                        "--threads-per-job", "2"])  # the pinned numbers were made with 2 threads
    assert result.exit_code == 0, result.output
    expected = json.loads((HERE / f"{name}.json").read_text())
    assert pinned_values(out) == expected


if __name__ == "__main__":
    json.dump(pinned_values(Path(sys.argv[1])), sys.stdout, indent=1, sort_keys=True)
