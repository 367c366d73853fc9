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
