"""Storage faults never give a silent wrong number (issue 9): damaged or unreadable stored objects
are quarantined, named in one line and recomputed, so the rerun ends identical to a clean run;
writes are durable; tables only grow on resume; two runs on one directory do no job twice."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import mibench.engine.store
import mibench.runner
from mibench.engine.store import Store, atomic_write
from mibench.execution.executor import Executor
from tests.grids import digits_grid, run_grid

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

GRID = digits_grid(epochs=3, attacks="[loss, m-entropy]")
METRICS = ["dataset", "defense", "seed", "attack", "status", "train_acc", "test_acc", "auc", "tpr_at_1pct_fpr",
           "balanced_acc", "target_model", "attack_output"]


def run(write_grid, registry, out, log=None, executor=None, grid=GRID):
    ran = run_grid(write_grid, registry, out, grid, log=log, executor=executor)
    return ran.summary, ran.lines


@pytest.fixture
def clean(write_grid, registry, tmp_path):
    """A finished run and its results."""
    out = tmp_path / "run"
    summary, _ = run(write_grid, registry, out)
    assert summary.ok
    return out, pd.read_csv(out / "results.csv")[METRICS]


def damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "flip":
        middle = len(data) // 2
        data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    elif how == "truncate":
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))


def one_of(out: Path, kind: str, ext: str) -> Path:
    return sorted((out / "store" / kind).glob(f"*.{ext}"))[0]


@pytest.mark.parametrize("kind, ext, how", [
    ("models", "pt", "flip"), ("models", "pt", "truncate"), ("models", "json", "truncate"),
    ("predictions", "pt", "flip"), ("attacks", "npz", "flip"), ("attacks", "npz", "truncate"),
    ("attacks", "json", "flip"),
])
def test_a_damaged_object_is_quarantined_named_and_recomputed(clean, write_grid, registry, kind, ext, how):
    out, expected = clean
    victim = one_of(out, kind, ext)
    damage(victim, how)
    summary, lines = run(write_grid, registry, out)
    assert summary.ok, summary.failures
    named = [line for line in lines if str(victim) in line]
    assert len(named) == 1 and "damaged" in named[0] and "quarantine" in named[0], lines
    assert list((out / "store" / "quarantine" / kind).glob(f"{victim.name}.*"))  # kept, not deleted
    assert victim.is_file()  # recomputed
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[METRICS], expected)


def test_a_deleted_model_record_retrains_the_model(clean, write_grid, registry):
    out, expected = clean
    record = one_of(out, "models", "json")
    record.unlink()
    summary, _ = run(write_grid, registry, out)
    assert summary.ok and len(summary.trained) == 1
    assert record.is_file()
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[METRICS], expected)


def test_writes_are_synced_before_and_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    atomic_write(tmp_path / "x" / "object.bin", b"data")
    assert len(synced) == 2
    assert Path(synced[0]).parent == tmp_path / "x" and synced[0].endswith(".tmp")  # the file, before the rename
    assert Path(synced[1]) == tmp_path / "x"  # its directory, after


def test_files_follow_the_umask(write_grid, registry, tmp_path):
    old = os.umask(0o027)
    try:
        import importlib

        importlib.reload(mibench.engine.store)
        Store(tmp_path / "s").save_json("k", "v", {"a": 1})
        assert (tmp_path / "s" / "k" / "v.json").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
        importlib.reload(mibench.engine.store)
    out = tmp_path / "run"
    run(write_grid, registry, out)
    mask = os.umask(old)
    os.umask(mask)
    for path in [out / "results.csv", out / "leaderboard.csv", one_of(out, "models", "pt")]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


class Killed(Executor):
    """An executor killed before it finishes a single job."""

    def run(self, plan, store, device):
        raise KeyboardInterrupt
        yield  # pragma: no cover


def test_tables_only_grow_when_a_resumed_run_is_killed(clean, write_grid, registry):
    out, expected = clean
    with pytest.raises(KeyboardInterrupt):
        run(write_grid, registry, out, executor=Killed())
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[METRICS], expected)


def test_disk_full_while_writing_results_fails_in_one_line_and_the_run_goes_on(write_grid, registry, tmp_path,
                                                                               monkeypatch):
    real = mibench.runner.write_csv
    calls = []

    def full_once(frame, path):
        calls.append(path)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(frame, path)

    monkeypatch.setattr(mibench.runner, "write_csv", full_once)
    out = tmp_path / "run"
    summary, lines = run(write_grid, registry, out, grid=GRID.replace("seeds: [0]", "seeds: [0, 1]"))
    assert summary.failures == [f"writing {out / 'results.csv'} failed: No space left on device; its rows are kept "
                                "in the store"]
    assert [line for line in lines if line.startswith("error:")] == ["error: " + summary.failures[0]]
    assert len(pd.read_csv(out / "results.csv")) == 4  # the next write, after the second cell, has every row


CONCURRENT_GRID = """
name: concurrent
device: cpu
datasets: [digits]
architectures: [{name: mlp, params: {hidden: [64]}}]
defenses: [ce, {name: label-smoothing, params: {epsilon: 0.1}}]
attacks: [loss]
training: {epochs: 15, batch_size: 64}
shadow: {count: 2}
"""


def test_two_runs_on_one_directory_train_each_model_once(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(CONCURRENT_GRID)
    out = tmp_path / "run"
    env = {**os.environ, "MIBENCH_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mibench", "run", str(grid), "--output", str(out)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    trained = sum(err.count("       done in") for _, err in outputs)
    assert trained == 6  # two defenses x (target + two shadows), each once over both runs
    single = tmp_path / "single"
    assert subprocess.run([*command[:-1], str(single)], env=env, capture_output=True).returncode == 0
    both = pd.read_csv(out / "results.csv")[METRICS]
    pd.testing.assert_frame_equal(both, pd.read_csv(single / "results.csv")[METRICS])


def test_disk_full_in_a_pool_run_is_one_line_per_file_and_the_run_goes_on(write_grid, registry, tmp_path,
                                                                          monkeypatch):
    """The pooled scores and errors.log cannot be written: one error line each, every row still in results.csv."""
    import pathlib

    enospc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_save, real_open = Store.save_arrays, pathlib.Path.open

    def save_arrays(self, kind, key, **arrays):
        if "target" in arrays:  # only a pool's pooled output has a target column
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root / kind / f"{key}.npz"))
        return real_save(self, kind, key, **arrays)

    def open_(self, *args, **kwargs):
        if self.name == "errors.log":
            raise enospc
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Store, "save_arrays", save_arrays)
    monkeypatch.setattr(pathlib.Path, "open", open_)
    out = tmp_path / "run"
    grid = digits_grid(defenses="[boom, ce]", attacks="[loss]", epochs=2, extra="protocol: pool\npool: {models: 4}\n")
    summary, lines = run(write_grid, registry, out, grid=grid)
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 2, lines
    assert errors[0].startswith(f"error: writing {out / 'errors.log'} failed: No space left on device; ")
    assert errors[1].startswith(f"error: writing {out / 'store' / 'attacks'}") and "No space left on device" in errors[1]
    results = pd.read_csv(out / "results.csv")
    assert results["status"].tolist() == ["failed", "ok"] and results.loc[1, "targets"] == 4
    assert len(pd.read_csv(out / "per_target.csv")) == 8
