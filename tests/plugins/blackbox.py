"""A defense that releases a black-box model only: white-box attacks must be refused at validation."""

from mibench.sdk.hooks import hookimpl
from mibench.sdk.defense import LossDefense
from mibench_plugins.defenses.ce import CrossEntropy


class BlackBoxCE(LossDefense):
    """Cross-entropy training, released behind a prediction API (no weights, no gradients)."""

    name = "blackbox-ce"
    white_box = False

    def objective(self, spec):
        return CrossEntropy()


@hookimpl
def register_defenses(register):
    register(BlackBoxCE)
