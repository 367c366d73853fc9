"""mibench.sdk.testing, the stable helper plugin authors test with (the example packages use it, under examples/)."""

from __future__ import annotations

import pytest

from mibench.config.errors import ConfigError
from mibench.sdk.testing import run_grid, tiny_grid

pytestmark = pytest.mark.slow  # trains a tiny grid


def test_a_tiny_grid_runs_and_its_rows_come_back(tmp_path):
    run = run_grid(tiny_grid(attacks=["loss", "entropy"]), output=tmp_path)
    assert run.ok and run.output == tmp_path / "run"
    assert [(r["defense"], r["attack"]) for r in run.rows] == [("ce", "loss"), ("ce", "entropy")]
    assert run.row(attack="entropy")["status"] == "ok"
    with pytest.raises(LookupError, match=r"^0 rows match \{'attack': 'lira'\}; the rows have: \[\('ce', 'entropy'\), "
                                          r"\('ce', 'loss'\)\]$"):
        run.row(attack="lira")


def test_a_bad_grid_raises_the_message_validate_prints(tmp_path):
    with pytest.raises(ConfigError, match=r"grid.yaml:\d+: defenses\[0\]: unknown defense 'nope'; registered: "):
        run_grid(tiny_grid(defenses=["nope"]), output=tmp_path)
