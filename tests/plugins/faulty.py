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
