"""Serial vs local vs Ray on one grid, each from an empty store, with the same 2-core budget.

    python -m benchmarks.executors [--grid benchmarks/executors.yaml] [--skip-ray]

Each executor runs ``mibench run`` in a fresh process (so worker start-up counts):
serial with the machine's default threads (the speed baseline), local and ray with
2 workers x 1 thread. A fourth run, serial with 1 thread, is the reference for the
results: a model's bytes depend on its thread count, so local and ray must equal it
exactly. Prints the wall times, the ratios to serial, and whether results are identical.
Run it on a quiet machine: another busy process makes every figure meaningless.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

COLUMNS = ["dataset", "defense", "seed", "attack", "status", "train_acc", "test_acc", "auc", "balanced_acc",
           "target_model", "attack_output"]


def timed_run(grid: Path, out: Path, *options: str) -> float:
    env = {**os.environ, "MIBENCH_PROGRESS": "0"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mibench", "run", str(grid), "--output", str(out), *options],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"mibench run {' '.join(options)} failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=Path(__file__).with_name("executors.yaml"))
    parser.add_argument("--skip-ray", action="store_true", help="Leave out the Ray executor.")
    args = parser.parse_args()
    runs = {
        "serial": ["--executor", "serial"],
        "local": ["--executor", "local", "--workers", "2", "--threads-per-job", "1"],
        "ray": ["--executor", "ray", "--workers", "2", "--threads-per-job", "1"],
        "serial, 1 thread (reference)": ["--executor", "serial", "--threads-per-job", "1"],
    }
    if args.skip_ray:
        runs.pop("ray")
    with tempfile.TemporaryDirectory() as tmp:
        times, tables = {}, {}
        for name, options in runs.items():
            out = Path(tmp) / name.split(",")[0].replace(" ", "-") / ("t1" if "reference" in name else "run")
            times[name] = timed_run(args.grid, out, *options)
            tables[name] = pd.read_csv(out / "results.csv")[COLUMNS].sort_values(COLUMNS[:4]).reset_index(drop=True)
            print(f"{name:<30} {times[name]:7.1f} s", flush=True)
        reference = tables["serial, 1 thread (reference)"]
        print()
        for name in runs:
            if name.startswith("serial"):
                continue
            same = tables[name].equals(reference)
            print(f"{name}: {times['serial'] / times[name]:.2f}x faster than serial; results "
                  f"{'identical to' if same else 'DIFFERENT from'} the 1-thread serial run")
        print(f"serial with the default threads gives {'identical' if tables['serial'].equals(reference) else 'other'}"
              " results (thread counts change float reductions)")


if __name__ == "__main__":
    main()
