"""benchmarks/device_check.sh, the GPU check, runs end to end as a CPU smoke test (DEVICE=cpu SMALL=1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains models in several processes: about 90 s on 2 cores

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_on_the_cpu():
    env = {**os.environ, "DEVICE": "cpu", "SMALL": "1", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh")], env=env, capture_output=True,
                          text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "failed" not in out, out
    for header in range(1, 7):
        assert f"== {header}. " in out
    for figure in [r"ratio mibench / bare = \d", r"small-cnn: one at a time [\d,]+ images/s",
                   r"stack of   2: +[\d,]+ images/s, [\d.]+x one at a time", r"jobs-per-device 2: [\d.]+ s",
                   r"speedup of 2 jobs per device over 1: [\d.]+x", r"airbench: one at a time [\d,]+ images/s \([\d.]+ s per epoch",
                   r"pool of 6 models: [\d.]+ s wall, 1 stack job\(s\)", r"batched vs loop: relative difference"]:
        assert re.search(figure, out), (figure, out)
