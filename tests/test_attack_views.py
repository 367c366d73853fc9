"""What an attack may see: the target has no member list, samples come in pool order, and
black-box queries on attack-made inputs work without white-box rights (issue 8, section 1)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mibench.config.resolve import load_grid
from mibench.runner import Runner
from mibench.sdk import AttackContext, AttackOutput, ModelView, ReferenceView
from mibench_plugins.attacks.confidence import LossAttack
from tests.conftest import DIGITS_GRID


@pytest.fixture
def seen(monkeypatch):
    """The context the loss attack gets, and the queries it makes on the target."""
    contexts: list[AttackContext] = []

    def spy(self, ctx: AttackContext) -> AttackOutput:
        contexts.append(ctx)
        images = ctx.pool.inputs[torch.as_tensor(ctx.eval_indices[:10])].float() / ctx.pool.scale
        flipped = ctx.target.query(images.flip(-1))  # black-box: allowed on every model
        assert flipped.shape == (10, ctx.pool.num_classes)
        direct = ctx.target.query(images)
        assert torch.allclose(direct, ctx.target.logits(ctx.eval_indices[:10]), atol=1e-5)
        return LossAttack.run.__wrapped__(self, ctx)

    spy.__wrapped__ = LossAttack.run
    monkeypatch.setattr(LossAttack, "run", spy)
    return contexts


def test_the_target_view_hides_membership(write_grid, registry, tmp_path, seen):
    text = DIGITS_GRID.replace("defenses: [ce]", "defenses: [blackbox-ce]").replace(
        "attacks: [loss, entropy, m-entropy]", "attacks: [loss]")
    summary = Runner(load_grid(write_grid(text), registry), registry, tmp_path / "run", log=lambda _: None).run()
    assert summary.ok, summary.failures
    (ctx,) = seen
    target = ctx.target
    assert isinstance(target, ModelView) and not isinstance(target, ReferenceView)
    assert not any(hasattr(target, name) for name in ("members", "nonmembers", "excluded", "eval_membership"))
    assert all(isinstance(s, ReferenceView) for s in ctx.references)
    # evaluation samples in pool order: their order says nothing about membership
    assert np.all(np.diff(ctx.eval_indices) > 0)
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(ctx.eval_indices) == results.loc[0, "n_members"] + results.loc[0, "n_nonmembers"]
    # a black-box defense refuses white-box access but answers queries, which are counted
    with pytest.raises(PermissionError):
        target.module()
    assert target.queries == 20
    (meta,) = [json.loads(p.read_text()) for p in (tmp_path / "run" / "store" / "attacks").glob("*.json")]
    assert meta["info"]["target_queries"] == 20


def test_a_query_must_have_the_pools_image_shape(write_grid, registry, tmp_path, monkeypatch):
    def bad(self, ctx):
        ctx.target.query(torch.zeros(3, 64))
        raise AssertionError("unreachable")

    monkeypatch.setattr(LossAttack, "run", bad)
    text = DIGITS_GRID.replace("attacks: [loss, entropy, m-entropy]", "attacks: [loss]")
    summary = Runner(load_grid(write_grid(text), registry), registry, tmp_path / "run", log=lambda _: None).run()
    assert summary.failures == ["loss on digits / mlp(hidden=[64]) / ce / seed 0: attack failed: ValueError: queries "
                                "must be N x 1 x 8 x 8 images in [0, 1], got shape (3, 64)"]
