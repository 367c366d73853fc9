"""training.stack: K models trained at once equal the same K trained one at a time; what cannot stack falls
back with its reason; a diverged model fails only itself; the scheduler hands a stack to the executor as one job."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from mibench.engine.jobs import TrainJob, TrainStackJob
from mibench.engine.plan import build_plan
from mibench.engine.records import TrainRecord
from mibench.engine import stacking
from mibench.engine.stacking import AUTO_MAX, activation_elements, architecture_refusal, model_bytes, run_refusal, \
    stack_limit
from mibench.engine.store import Store
from mibench.engine.training import run_train_job, run_train_stack
from mibench.registry.loading import default_manager
from mibench.sdk import Architecture, Objective, hookimpl
from mibench_plugins.defenses.ce import CE
from mibench.config.plugin_config import PluginConfig
from torch import nn
from tests.grids import digits_grid, run_grid

pytestmark = pytest.mark.slow  # trains models

CPU = torch.device("cpu")
# Measured on the CPU (6 epochs, 4 models, 1 and 2 threads): the largest |stacked - alone| of a tensor over its
# largest |weight| was 2.3e-6 (MLP, CE), 5.8e-7 (small CNN, CRL), 6.6e-7 (small CNN with BatchNorm): float
# reassociation in the batched kernels. The bound leaves room for other CPUs.
RELATIVE_TOLERANCE = 1e-4


class DivergesAsShadow1(CE):
    """Cross-entropy, except that shadow 1 gets a loss of NaN (a diverging run)."""

    name = "diverges-as-shadow-1"

    def prepare(self, ctx):
        model, objective = super().prepare(ctx)
        return model, (NaNLoss() if ctx.role == "shadow-1" else objective)


class NaNLoss(Objective):
    def forward(self, logits, features, targets, epoch):
        return logits.sum() * math.nan


class NoVmap(Architecture):
    """An MLP whose forward reads a number to the host: vmap (and the meta device) refuse it."""

    name = "no-vmap"

    def build(self, input_shape, num_classes):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.head = nn.Linear(math.prod(input_shape), num_classes)

            def forward(self, x):
                x = x.flatten(1)
                return self.head(x) * float(x.abs().sum() > -1), x

        return Net()


class Plugins:
    @hookimpl
    def register_defenses(self, register):
        register(DivergesAsShadow1)

    @hookimpl
    def register_architectures(self, register):
        register(NoVmap)


@pytest.fixture(scope="module")
def registry():
    manager = default_manager()
    manager.register(Plugins(), name="tests.stacking")
    return manager.build_registry()


def training_runs(write_grid, registry, lr=0.1, **grid):
    text = digits_grid(attacks="[loss]", **grid).replace("lr: 0.1,", f"lr: {lr},")
    plan = build_plan(load_grid(write_grid(text), registry))
    return [job.training_run for job in plan.jobs.values() if isinstance(job, TrainJob)]


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp(min=1e-12))


@pytest.mark.parametrize("architecture,defense,lr", [
    ("{name: mlp, params: {hidden: [64]}}", "ce", 0.1),
    # an objective with its own parameters (the centers); alphas below the losses keep the loss smooth
    ("{name: small-cnn, params: {channels: [8, 16], hidden: 32}}",
     "{name: crl, params: {alpha_rce: 0.01, alpha_rcl: 0.01}}", 0.1),
    # BatchNorm's buffers; at lr 0.1 this net amplifies float differences (one at a time against itself on
    # another thread count would drift as far), so the comparison runs where training is stable
    ("{name: small-cnn, params: {channels: [8], hidden: 32, norm: batch}}",
     "{name: label-smoothing, params: {epsilon: 0.1}}", 0.02),
])
def test_stacked_training_equals_one_model_at_a_time(write_grid, registry, tmp_path, architecture, defense, lr):
    runs = training_runs(write_grid, registry, architectures=f"[{architecture}]", defenses=f"[{defense}]",
                         epochs=6, shadow=3, lr=lr)
    assert len(runs) == 4 and run_refusal(runs[0]) is None
    alone, stacked = Store(tmp_path / "alone"), Store(tmp_path / "stacked")
    for run in runs:
        run_train_job(run, alone, CPU)
    outcomes = run_train_stack(runs, stacked, CPU)
    assert all(isinstance(o, TrainRecord) and o.trained for o in outcomes)
    for run in runs:
        want = alone.load_torch("models", run.key)["state_dict"]
        got = stacked.load_torch("models", run.key)["state_dict"]
        assert want.keys() == got.keys()
        for name, tensor in want.items():
            if tensor.is_floating_point():
                assert relative_gap(tensor, got[name]) <= RELATIVE_TOLERANCE, (run.label(), name)
            else:
                assert torch.equal(tensor, got[name]), name  # BatchNorm's step counts
        # the target trains on one sample more than its shadows (an odd split): it trains alone
        want_stacked = 1 if str(run.role) == "target" else 3
        assert json.loads(stacked.path("models", run.key, "json").read_text())["stacked"] == want_stacked
    # four different models (their own seeds and data), not one copied four times
    first = [alone.load_torch("models", r.key)["state_dict"] for r in runs[:2]]
    name = next(iter(first[0]))
    assert relative_gap(first[0][name], first[1][name]) > 0.1


def test_a_diverged_model_fails_only_itself(write_grid, registry, tmp_path):
    runs = training_runs(write_grid, registry, defenses="[diverges-as-shadow-1]", epochs=2, shadow=4)
    outcomes = run_train_stack(runs, Store(tmp_path), CPU)
    assert [str(r.role) for r in runs] == ["target", "shadow-0", "shadow-1", "shadow-2", "shadow-3"]
    for run, outcome in zip(runs, outcomes):
        if str(run.role) == "shadow-1":
            assert str(outcome) == "training diverged at epoch 1 (loss nan)"
        else:
            assert isinstance(outcome, TrainRecord) and outcome.trained


def test_what_cannot_stack_says_why(write_grid, registry):
    (ce,) = {r.defense for r in training_runs(write_grid, registry)}
    assert run_refusal(training_runs(write_grid, registry)[0]) is None
    for defense in ("dmp", "advreg", "{name: early-stopping, params: {epoch: 2}}"):
        run = training_runs(write_grid, registry, defenses=f"[{defense}]", epochs=2)[0]
        assert run_refusal(run) == f"defense {run.defense.label} drives its own training"
    dropout = training_runs(write_grid, registry, architectures="[{name: mlp, params: {dropout: 0.5}}]")[0]
    assert run_refusal(dropout) == "architecture mlp(dropout=0.5) has dropout (one random stream under vmap)"
    info = registry.get("architecture", "no-vmap")
    refusal = architecture_refusal(PluginConfig(info, info.cls.Params()), (1, 8, 8), 10)
    assert refusal.startswith("architecture no-vmap does not run under vmap (")


def test_stack_limits(write_grid, registry):
    def limit(stack, device):
        extra_training = f"\n  stack: {stack}" if stack is not None else ""
        text = digits_grid(attacks="[loss]").replace("  batch_size: 64", "  batch_size: 64" + extra_training)
        run = [j.training_run for j in build_plan(load_grid(write_grid(text), registry)).jobs.values()
               if isinstance(j, TrainJob)][0]
        return stack_limit(run, torch.device(device))

    assert limit(None, "cpu") == 1  # auto: off on the CPU, where stacking is slower
    assert limit("off", "cuda") == 1
    assert limit(3, "cpu") == 3
    assert limit(None, "cuda") == AUTO_MAX  # a 64-hidden MLP on 8x8 digits: far below the memory budget
    with pytest.raises(ConfigError) as err:
        limit(0, "cpu")
    assert str(err.value).endswith(":11: training.stack: Value error, stack must be auto, off or a number of models "
                                   "from 1 to 1024 (got 0)")


def test_a_run_with_stack_trains_stacks_and_falls_back_where_it_must(write_grid, registry, tmp_path):
    text = digits_grid(defenses="[ce, dmp]", attacks="[loss]", epochs=2, shadow=3).replace(
        "  batch_size: 64", "  batch_size: 64\n  stack: 8")
    ran = run_grid(write_grid, registry, tmp_path / "run", text)
    assert any(line.startswith("train  stack of 4: target digits/mlp(hidden=[64])/ce seed 0 .. shadow-2 seed ")
               for line in ran.lines)
    assert sum(line.startswith("train  ") for line in ran.lines) == 1 + 4  # one stack of CE, DMP one at a time
    assert any(line.startswith("training.stack: mlp(hidden=[64])/dmp trains one model at a time: defense dmp "
                               "drives its own training") for line in ran.lines)
    results = ran.results
    assert set(results["defense"]) == {"ce", "dmp"} and results["error"].isna().all()
    # a rerun finds every model stored: nothing is trained again
    again = run_grid(write_grid, registry, tmp_path / "run", text)
    assert not any(line.startswith(("train ", "attack ", "       ")) for line in again.lines)  # no job's lines
    assert again.lines[-1] == (f"reused from {tmp_path / 'run' / 'store'}: 8 trained models and 2 attack results "
                               "(cached, not recomputed)")


def test_a_stack_is_one_job_to_the_executor(write_grid, registry, tmp_path):
    started = []
    from mibench.execution.dispatch import SerialExecutor

    text = digits_grid(attacks="[loss]", epochs=1, shadow=2).replace("  batch_size: 64",
                                                                       "  batch_size: 64\n  stack: 2")
    run_grid(write_grid, registry, tmp_path / "run", text,
             executor=SerialExecutor(on_start=lambda job, worker: started.append(job)))
    stacks = [job for job in started if isinstance(job, TrainStackJob)]
    trains = [job for job in started if isinstance(job, TrainJob)]
    assert [len(s.members) for s in stacks] == [2] and len(trains) == 1  # 3 models: a stack of 2 and one alone


def test_validate_says_how_training_stacks(write_grid, registry):
    from mibench.cli.validate_cmd import describe_stacks

    text = digits_grid(defenses="[ce, dmp]", attacks="[loss]", shadow=3).replace("device: cpu", "device: auto")
    resolved = load_grid(write_grid(text), registry)
    assert describe_stacks(resolved, build_plan(resolved)) == [
        "training on a GPU (device auto) (training.stack; small models alone leave a GPU mostly idle):",
        "  digits / mlp(hidden=[64]) / ce: 4 models in 1 stack of up to 64",
        "  digits / mlp(hidden=[64]) / dmp: 4 models one at a time (defense dmp drives its own training)",
    ]
    on_cpu = load_grid(write_grid(digits_grid(attacks="[loss]").replace("  batch_size: 64", "  batch_size: 64\n"
                                                                        "  stack: 3")), registry)
    assert describe_stacks(on_cpu, build_plan(on_cpu))[1:] == ["  digits / mlp(hidden=[64]) / ce: 3 models in 1 stack "
                                                               "of up to 3"]


def test_auto_fits_a_stack_in_the_gpus_memory(write_grid, registry, monkeypatch):
    text = """
name: fast
device: cuda
protocol: pool
pool: {models: 8}
datasets: [{name: cifar10, params: {root: nowhere}}]
architectures: [airbench]
defenses: [ce]
attacks: [loss]
training: {preset: airbench}
"""
    (run,) = {j.training_run.architecture: j.training_run for j in build_plan(load_grid(write_grid(text), registry))
              .jobs.values() if isinstance(j, TrainJob)}.values()
    assert activation_elements(run.architecture, (3, 32, 32), 10) == 353_786  # every layer's output, per image
    need = 4 * (4 * 1_972_792 + 2 * 353_786 * 1024)  # parameters x 4, activations x 2 at batch 1024, float32
    assert model_bytes(run, (3, 32, 32), 10) == need
    monkeypatch.setattr(stacking, "device_bytes", lambda device: 80 * 2**30)
    assert stack_limit(run, torch.device("cuda")) == int(0.6 * 80 * 2**30) // need == 17
