"""A defense that fails, to check that a failing cell is recorded and the others finish."""

from mibench.sdk.hooks import hookimpl
from mibench.sdk.defense import Defense


class Boom(Defense):
    """Raises while training."""

    name = "boom"

    def train(self, job):
        raise RuntimeError("boom: this defense always fails")


@hookimpl
def register_defenses(register):
    register(Boom)
    register(DiesOnce)
    register(ClaimsTinyEpsilon)


# --- plugins that `mibench validate` must refuse before any training (issue 8, section 3)

import torch  # noqa: E402
from torch import nn  # noqa: E402

from mibench.sdk import Architecture, DataShape, Dataset, Pool  # noqa: E402


class LogitsOnly(Architecture):
    """Forgets to return the features."""

    name = "logits-only"

    def build(self, input_shape, num_classes):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], num_classes)

            def forward(self, x):
                return self.fc(x.flatten(1))

        return Net()


class FlatTable(Dataset):
    """A tabular dataset whose pool is N x F instead of N x F x 1 x 1."""

    name = "flat-table"

    def shape(self):
        return DataShape((8,), 2, 40)

    def load_pool(self):
        return Pool(torch.zeros(40, 8), torch.zeros(40, dtype=torch.long), 2, (0.0,), (1.0,))


@hookimpl
def register_architectures(register):
    register(LogitsOnly)


@hookimpl
def register_datasets(register):
    register(FlatTable)


# --- a defense whose process dies (SIGKILL) the first time it trains, for executor retries (issue 10)

import os  # noqa: E402
import signal  # noqa: E402

from mibench.sdk import TrainedModel  # noqa: E402
from mibench_plugins.defenses.ce import CE  # noqa: E402

DIE_ONCE_MARKER = "MIBENCH_TEST_DIE_ONCE"  # env var: a file path; the first training run to create it dies


class DiesOnce(CE):
    """Cross-entropy, but the process training it is killed the first time (the marker file says so)."""

    name = "dies-once"

    def train(self, job):
        marker = os.environ.get(DIE_ONCE_MARKER)
        if marker and job.role == "target":
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().train(job)



class ClaimsTinyEpsilon(CE):
    """Cross-entropy that claims, falsely, to be (0.01, 1e-5)-DP: an empirical bound above it must fail the row."""

    name = "claims-dp"

    def train(self, job):
        trained = super().train(job)
        return TrainedModel(trained.model, trained.members, {**trained.info, "epsilon": 0.01, "delta": 1e-5})
