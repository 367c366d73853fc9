"""Executors (issue 10): local worker processes and Ray tasks give the serial run's numbers, survive a
worker killed mid-job, keep their thread promise, and start a cell's attacks as soon as its models are ready."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from mibench.config.execution import ExecutionConfig
from mibench.config.resolve import load_grid
from mibench.execution.factory import resolve_execution
from mibench.execution.local import LocalExecutor
from mibench.runner import Runner
from tests.grids import run_grid
from tests.plugins.faulty import DIE_ONCE_MARKER

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

GRID = """
name: executors
device: cpu
datasets: [digits]
architectures: [{name: mlp, params: {hidden: [32]}}]
defenses: [ce, {name: label-smoothing, params: {epsilon: 0.1}}]
attacks: [loss, m-entropy]
training: {epochs: 6, batch_size: 64}
shadow: {count: 2}
"""
COLUMNS = ["defense", "seed", "attack", "status", "train_acc", "test_acc", "auc", "balanced_acc", "target_model",
           "attack_output"]


def run(write_grid, registry, out, text=GRID, **kwargs):
    ran = run_grid(write_grid, registry, out, text, **kwargs)
    return ran.summary, ran.lines


def results(out):
    return pd.read_csv(out / "results.csv")[COLUMNS]


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory, registry):
    """The grid run serially with one thread: the reference every executor must reproduce."""
    out = tmp_path_factory.mktemp("serial") / "run"
    path = out.parent / "grid.yaml"
    path.write_text(GRID)
    summary = Runner(load_grid(path, registry), registry, out, log=lambda _: None,
                     execution=ExecutionConfig(executor="serial", threads_per_job=1)).run()
    assert summary.ok, summary.failures
    return out


def test_local_workers_reproduce_the_serial_run(serial_run, write_grid, registry, tmp_path):
    executor = LocalExecutor(workers=2, threads=1)
    summary, _ = run(write_grid, registry, tmp_path / "local", executor=executor)
    assert summary.ok, summary.failures
    pd.testing.assert_frame_equal(results(tmp_path / "local"), results(serial_run))
    assert sorted(executor.worker_threads.values()) == [1, 1]  # threads per worker as promised
    records = [json.loads(p.read_text()) for p in (tmp_path / "local" / "store" / "models").glob("*.json")]
    assert {r["threads"] for r in records} == {1}


def test_local_workers_train_stacks_with_the_serial_runs_numbers(serial_run, write_grid, registry, tmp_path):
    text = GRID.replace("training: {epochs: 6, batch_size: 64}", "training: {epochs: 6, batch_size: 64, stack: 3}")
    summary, lines = run(write_grid, registry, tmp_path / "local", text=text,
                         executor=LocalExecutor(workers=2, threads=1))
    assert summary.ok, summary.failures
    # per defense one stack of its target and 2 shadows; the target trains on one sample more (an odd split), so
    # it trains alone and the shadows as a stack of 2
    records = [json.loads(p.read_text()) for p in (tmp_path / "local" / "store" / "models").glob("*.json")]
    assert sorted(r["stacked"] for r in records) == [1, 1, 2, 2, 2, 2]
    metrics = ["train_acc", "test_acc", "auc", "balanced_acc"]
    got, want = results(tmp_path / "local"), results(serial_run)
    assert got[["defense", "seed", "attack"]].equals(want[["defense", "seed", "attack"]])
    # stacked weights differ from one-at-a-time ones by float reassociation only (tests/test_stacking.py)
    assert (got[metrics] - want[metrics]).abs().to_numpy().max() <= 0.01


def test_a_worker_killed_mid_job_costs_that_job_only(serial_run, write_grid, registry, tmp_path, monkeypatch):
    marker = tmp_path / "died"
    monkeypatch.setenv(DIE_ONCE_MARKER, str(marker))
    text = GRID.replace("defenses: [ce,", "defenses: [dies-once,")
    summary, lines = run(write_grid, registry, tmp_path / "local", text=text,
                         executor=LocalExecutor(workers=2, threads=1, log=None))
    assert marker.exists()  # the first try was killed (SIGKILL) ...
    assert summary.ok, summary.failures  # ... and the job ran again, and the run finished
    got = results(tmp_path / "local")
    want = results(serial_run)
    metrics = ["seed", "attack", "status", "train_acc", "test_acc", "auc", "balanced_acc"]
    pd.testing.assert_frame_equal(got[got.defense == "dies-once"][metrics].reset_index(drop=True),
                                  want[want.defense == "ce"][metrics].reset_index(drop=True))


def test_a_cells_attacks_start_before_all_training_is_done(write_grid, registry, tmp_path):
    started: list[tuple[float, str]] = []
    text = GRID.replace("defenses: [ce, {name: label-smoothing, params: {epsilon: 0.1}}]",
                        "defenses: [ce, {name: label-smoothing, sweep: {epsilon: [0.05, 0.1, 0.2]}}]")
    executor = LocalExecutor(workers=2, threads=1, on_start=lambda job, worker: started.append((time.time(), job.kind)))
    summary, _ = run(write_grid, registry, tmp_path / "order", text=text, executor=executor)
    assert summary.ok
    first_attack = min(t for t, kind in started if kind == "attack")
    last_train = max(t for t, kind in started if kind == "train")
    assert first_attack < last_train


def test_settings_keep_workers_times_threads_within_the_cores(monkeypatch):
    import mibench.execution.factory as factory
    from mibench.execution.executor import ExecutionError

    monkeypatch.setattr(factory, "cores", lambda: 2)
    plan = resolve_execution(ExecutionConfig(), "cpu")
    assert (plan.executor, plan.workers, plan.threads_per_job) == ("local", 2, 1)
    assert resolve_execution(ExecutionConfig(threads_per_job=2), "cpu").workers == 1
    with pytest.raises(ExecutionError, match="2 workers x 2 threads exceed this machine's 2 cores"):
        resolve_execution(ExecutionConfig(workers=2, threads_per_job=2), "cpu")
    monkeypatch.setattr(factory, "cores", lambda: 1)
    assert resolve_execution(ExecutionConfig(), "cpu").executor == "serial"


def test_the_command_line_wins_over_the_grid(write_grid, cli_registry):
    from click.testing import CliRunner

    from mibench.cli.main import main

    path = write_grid(GRID + "execution: {executor: local, workers: 64}\n")
    result = CliRunner().invoke(main, ["run", str(path), "--executor", "serial", "--threads-per-job", "1",
                                       "--output", str(path.parent / "out")])
    assert result.exit_code == 0, result.output
    info = json.loads((path.parent / "out" / "run.json").read_text())
    assert info["execution"] == {"executor": "serial", "workers": 1, "threads_per_job": 1, "devices": ["cpu"],
                                 "jobs_per_device": 1}
    bad = CliRunner().invoke(main, ["run", str(path), "--executor", "local", "--threads-per-job", "2",
                                    "--output", str(path.parent / "out2")])
    assert bad.exit_code == 2
    cores = len(__import__("os").sched_getaffinity(0))
    assert bad.output.strip() == (f"error: 64 workers x 2 threads exceed this machine's {cores} cores; lower "
                                  "--workers or --threads-per-job")


ray = pytest.importorskip("ray", reason="the Ray executor's tests need Ray: pip install 'mibench[ray]'")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local two-CPU Ray cluster whose workers see the die-once marker path (given at start)."""
    marker = tmp_path_factory.mktemp("ray") / "died"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {DIE_ONCE_MARKER: str(marker)}})
    yield marker
    ray.shutdown()


def test_ray_reproduces_the_serial_run_and_reruns_a_killed_task(serial_run, ray_cluster, write_grid, registry,
                                                                tmp_path, monkeypatch):
    from mibench.execution.ray_executor import RayExecutor

    marker = ray_cluster
    summary, lines = run(write_grid, registry, tmp_path / "ray", executor=RayExecutor(workers=2, threads=1))
    assert summary.ok, summary.failures
    pd.testing.assert_frame_equal(results(tmp_path / "ray"), results(serial_run))

    text = GRID.replace("defenses: [ce,", "defenses: [dies-once,")
    log: list[str] = []
    summary = Runner(load_grid(write_grid(text, "dies.yaml"), registry), registry, tmp_path / "ray-dies",
                     log=log.append, executor=RayExecutor(workers=2, threads=1, log=log.append)).run()
    assert marker.exists() and summary.ok, summary.failures
    assert any("lost" in line and "running it again" in line for line in log), log
