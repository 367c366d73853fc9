"""The shared trainer: its schedule, and the GPU-path options exercised on the CPU.

channels_last and bf16 autocast are what the trainer uses on CUDA; both also run on
the CPU, so their code paths are tested here even without a GPU.
"""

import numpy as np
import pytest
import torch

from mibench.sdk.training_config import ScheduleConfig, TrainingConfig
from mibench.engine.protocols.splits import PaperSplits
from mibench.sdk.trainer import Trainer
from mibench_plugins.architectures.small import SmallCNN
from mibench_plugins.defenses.ce import CrossEntropy
from tests.conftest import _digits_pool


@pytest.mark.parametrize(
    "schedule,expected",
    [
        ({"name": "constant"}, [0.1, 0.1, 0.1, 0.1]),
        ({"name": "multistep", "milestones": [2, 3], "gamma": 0.1}, [0.1, 0.1, 0.01, 0.001]),
        ({"name": "piecewise", "lrs": {1: 0.01, 2: 0.1, 4: 0.001}}, [0.01, 0.1, 0.1, 0.001]),
        ({"name": "cosine"}, [0.1, 0.1 * (1 + np.cos(np.pi / 4)) / 2, 0.05, 0.1 * (1 + np.cos(3 * np.pi / 4)) / 2]),
        # epoch middles at 1/8, 3/8, 5/8, 7/8 of training; up from 0.2 to the peak at 1/4, down to 0.1 at the end
        ({"name": "triangle", "start": 0.2, "peak": 0.25, "end": 0.1},
         [0.1 * (0.2 + 0.8 * 0.5), 0.1 * (1 - 0.9 * (1 / 8) / 0.75), 0.1 * (1 - 0.9 * (3 / 8) / 0.75),
          0.1 * (1 - 0.9 * (5 / 8) / 0.75)]),
    ],
)
def test_learning_rate_schedules(schedule, expected):
    sched = ScheduleConfig.model_validate(schedule)
    assert [sched.lr_at(e, 0.1, 4) for e in (1, 2, 3, 4)] == pytest.approx(expected)


def train(**options):
    pool = _digits_pool()
    config = TrainingConfig(epochs=2, batch_size=64, optimizer={"lr": 0.05}, **options)
    members = PaperSplits.build(len(pool), 0).target.members
    trainer = Trainer(config, pool, torch.device("cpu"), seed=0)
    trainer.channels_last = options.get("channels_last", False)  # as on CUDA
    torch.manual_seed(0)
    model = SmallCNN().build(pool.input_shape, pool.num_classes)
    trainer.fit(model, members, CrossEntropy())
    return model, trainer, members


def test_channels_last_trains_the_same_model():
    plain, _, _ = train(channels_last=False)
    last, trainer, members = train(channels_last=True)
    x, _ = trainer.batch(trainer.inputs(members), torch.zeros(len(members), dtype=torch.long), torch.arange(8))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert next(last.conv.parameters()).is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(plain.state_dict().values(), last.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4)


def test_bf16_autocast_trains():
    model, trainer, members = train(precision="bf16")
    with trainer.autocast():
        logits, _ = model(torch.zeros(2, 1, 8, 8))
    assert logits.dtype == torch.bfloat16
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert params.dtype == torch.float32 and torch.isfinite(params).all()
