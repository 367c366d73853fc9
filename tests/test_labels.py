"""Labels name every param that differs between configs of one plugin, so no two configs print the same label."""

from __future__ import annotations

from mibench.config.resolve import load_grid

GRID = """
name: labels
datasets: [digits]
architectures: [mlp, {name: mlp, params: {hidden: [32]}}]
defenses: [relaxloss, {name: relaxloss, params: {alpha: 1.0}}, ce, {name: crl, sweep: {alpha_rce: [0.5, 1.0]}}]
attacks: [lira, {name: lira, params: {mode: online}}, loss]
protocol: pool
pool: {models: 8}
"""


def test_a_param_that_differs_is_named_in_every_label_of_its_plugin(write_grid, registry):
    resolved = load_grid(write_grid(GRID), registry)
    assert [d.label for d in resolved.defenses] == ["relaxloss(alpha=0.5)", "relaxloss(alpha=1.0)", "ce",
                                                    "crl(alpha_rce=0.5)", "crl(alpha_rce=1.0)"]
    assert [a.label for a in resolved.attacks] == ["lira(mode=offline)", "lira(mode=online)", "loss"]
    assert [a.label for a in resolved.architectures] == ["mlp(hidden=[256, 128])", "mlp(hidden=[32])"]
    assert len({d.label for d in resolved.defenses}) == len(resolved.defenses)


def test_a_lone_config_keeps_its_short_label(write_grid, registry):
    resolved = load_grid(write_grid(GRID.replace("defenses: [relaxloss, {name: relaxloss, params: {alpha: 1.0}}, ce, "
                                                 "{name: crl, sweep: {alpha_rce: [0.5, 1.0]}}]",
                                                 "defenses: [relaxloss, ce]")), registry)
    assert [d.label for d in resolved.defenses] == ["relaxloss", "ce"]
