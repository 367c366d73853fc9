"""The pool protocol (REFERENCE §7): balanced IN/OUT halves, leave-one-out references, pooled metrics."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from mibench.cli.main import main
from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from mibench.engine.attacking import load_attack_output
from mibench.engine.metrics import attack_metrics
from mibench.engine.plan import build_plan
from mibench.engine.protocols.pool import pool_seed
from mibench.engine.protocols.splits import PaperSplits, PoolSplits, Role
from mibench.engine.store import Store
from mibench.runner import Runner

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize("models", [4, 7, 16])
def test_each_sample_is_in_for_half_the_models(models):
    inside = PoolSplits.build(1000, 3, models, 0.6).inside
    assert inside.shape == (models, 600)
    assert (inside.sum(0) == models // 2).all()  # within one of M / 2 (odd M: the smaller half)
    # each model trains on about half of D (a binomial count: within 4 standard deviations)
    per_model = inside.sum(1)
    expected = 600 * (models // 2) / models
    assert (np.abs(per_model - expected) < 4 * np.sqrt(600 * 0.25)).all()


def test_pool_splits_partition_the_pool():
    pool = PoolSplits.build(1000, 3, 6, 0.6)
    assert len(pool.samples) == 600 and len(pool.population) == 400
    assert np.array_equal(np.union1d(pool.samples, pool.population), np.arange(1000))
    assert np.intersect1d(pool.samples, pool.population).size == 0
    assert np.array_equal(pool.attack_view()["population"], pool.population)  # z samples: no model saw them
    for m in range(6):
        split = pool.split(Role("pool", m))
        assert np.intersect1d(split.members, split.nonmembers).size == 0
        assert np.array_equal(np.union1d(split.members, split.nonmembers), pool.samples)
        assert np.array_equal(split.members, pool.samples[pool.inside[m]])
    with pytest.raises(ValueError, match="pool model 6 does not exist"):
        pool.split(Role("pool", 6))
    with pytest.raises(ValueError, match="unknown model role 'pool-0'"):
        PaperSplits.build(1000, 3).split(Role("pool", 0))


def test_pool_seeds_reproduce():
    a = PoolSplits.build(1000, 3, 8, 0.5)
    b = PoolSplits.build(1000, 3, 8, 0.5)
    c = PoolSplits.build(1000, 4, 8, 0.5)
    assert np.array_equal(a.samples, b.samples) and np.array_equal(a.inside, b.inside)
    assert not np.array_equal(a.samples, c.samples)
    assert not np.array_equal(a.inside, c.inside)


# ------------------------------------------------------------------------------- plan

POOL_GRID = """
name: pool-test
seeds: [0]
device: cpu
protocol: pool
pool: {models: 6, dataset_fraction: 0.5}
datasets: [digits]
architectures: [{name: mlp, params: {hidden: [32]}}]
defenses: DEFENSES
attacks: [loss, {name: lira, params: {mode: online}}, {name: rmia, params: {mode: online}}]
training:
  epochs: 4
  batch_size: 64
  optimizer: {name: sgd, lr: 0.1, momentum: 0.9}
"""


def test_targets_and_references_are_never_mixed(write_grid, registry):
    resolved = load_grid(write_grid(POOL_GRID.replace("DEFENSES", "[ce, label-smoothing]")), registry)
    plan = build_plan(resolved)
    assert plan.model_count() == (12, 0)
    assert len(plan.cells) == 2
    seen_models = set()
    for cell in plan.cells:
        keys = [t.key for t in cell.targets]
        assert len(set(keys)) == 6
        assert [str(t.role) for t in cell.targets] == [f"pool-{m}" for m in range(6)]
        assert [t.run.seed for t in cell.targets] == [pool_seed(0, m) for m in range(6)]
        assert {t.run.defense.name for t in cell.targets} == {cell.defense.name}  # references train like the target
        assert not seen_models & set(keys)  # no model serves two cells
        seen_models |= set(keys)
        groups = cell.attack_groups()
        assert [len(g) for g in groups] == [6, 6, 6]
        for group in groups:
            assert [job.target.key for job in group] == keys  # every model is the target once
            for job in group:
                refs = [r.key for r in job.shadows]
                assert job.target.key not in refs
                assert refs == [k for k in keys if k != job.target.key]  # leave-one-out: all the others


def test_pool_validation_explains_what_attacks_need(write_grid, registry):
    few = POOL_GRID.replace("DEFENSES", "[ce]").replace("models: 6", "models: 3")
    with pytest.raises(ConfigError) as err:
        load_grid(write_grid(few), registry)
    lines = str(err.value).splitlines()
    assert any(line.endswith(":5: pool.models: must be >= 4: each target of the pool needs IN and OUT reference "
                             "models among the other 2") for line in lines)
    four = POOL_GRID.replace("DEFENSES", "[ce]").replace("models: 6", "models: 4")
    with pytest.raises(ConfigError) as err:
        load_grid(write_grid(four), registry)
    assert str(err.value).endswith(":9: attacks[1]: attack 'lira(mode=online)' needs 2 IN and 2 OUT reference models "
                                   "per sample; pool.models 4 gives 1 of each (use at least 6 models)")
    paper = POOL_GRID.replace("DEFENSES", "[ce]").replace("protocol: pool", "protocol: paper")
    with pytest.raises(ConfigError) as err:
        load_grid(write_grid(paper), registry)
    assert "attacks[1]: attack 'lira(mode=online)' needs online reference models" in str(err.value)
    assert "attacks[2]: attack 'rmia(mode=online)' needs online reference models" in str(err.value)
    bad_fraction = POOL_GRID.replace("DEFENSES", "[ce]").replace("dataset_fraction: 0.5", "dataset_fraction: 1.0")
    with pytest.raises(ConfigError, match="pool.dataset_fraction: Input should be less than 1"):
        load_grid(write_grid(bad_fraction), registry)


# ------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory, registry):
    out = tmp_path_factory.mktemp("pool")
    path = out / "grid.yaml"
    path.write_text(POOL_GRID.replace("DEFENSES", "[ce]"))
    summary = Runner(load_grid(path, registry), registry, out / "run", log=lambda _: None).run()
    return summary


def test_pool_run_pools_the_roc_and_reports_each_target(pool_run):
    assert pool_run.ok, pool_run.failures
    out = pool_run.output_dir
    results = pd.read_csv(out / "results.csv")
    per_target = pd.read_csv(out / "per_target.csv")
    assert results["attack"].tolist() == ["loss", "lira(mode=online)", "rmia(mode=online)"]
    assert (results["protocol"] == "pool").all() and (results["targets"] == 6).all()
    assert len(per_target) == 18 and (per_target["targets"] == 1).all()
    assert per_target["target_model"].nunique() == 6
    store = Store(out / "store")
    for _, row in results.iterrows():
        mine = per_target[per_target["attack"] == row["attack"]]
        outputs = [load_attack_output(store, key) for key in mine["attack_output"]]
        membership = np.concatenate([o["membership"] for o in outputs]).astype(bool)
        scores = np.concatenate([o["scores"] for o in outputs])
        assert row["auc"] == pytest.approx(roc_auc_score(membership, scores), abs=1e-6)  # the pooled ROC
        assert row["tpr_at_1pct_fpr"] == pytest.approx(attack_metrics(membership, scores, None, None).tpr_at_1pct_fpr,
                                                       abs=1e-6)
        assert row["n_members"] == membership.sum() and row["n_nonmembers"] == (~membership).sum()
        assert np.isnan(row["tpr_at_0_01pct_fpr"])  # under 10,000 non-members, pooled or distinct
        assert row["auc_target_mean"] == pytest.approx(mine["auc"].mean(), abs=1e-6)
        assert row["auc_target_std"] == pytest.approx(mine["auc"].std(), abs=1e-6)
        assert row["test_acc"] == pytest.approx(mine["test_acc"].mean(), abs=1e-6)
        # every target is evaluated on the same sample set D, half of it its members (about)
        assert {len(o["indices"]) for o in outputs} == {len(outputs[0]["indices"])}
        assert all(np.array_equal(o["indices"], outputs[0]["indices"]) for o in outputs)
    info = json.loads((out / "run.json").read_text())
    assert info["plan"]["targets"] == 6 and info["grid"]["protocol"] == "pool"


def test_pool_run_resumes_from_the_store(pool_run, registry):
    out = pool_run.output_dir
    before = pd.read_csv(out / "results.csv")
    again = Runner(load_grid(out.parent / "grid.yaml", registry), registry, out, log=lambda _: None).run()
    assert again.ok and not again.trained
    after = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(before[["attack", "auc", "auc_target_mean"]], after[["attack", "auc", "auc_target_mean"]])


def test_exposed_lists_members_of_the_pool(pool_run):
    out = pool_run.output_dir
    result = CliRunner().invoke(main, ["exposed", str(out), "--top", "5", "--attack", "loss"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "exposed.csv")
    assert len(table) == 5 and (table["attack"] == "loss").all()
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert (table["evaluations"] == 3).all()  # each sample is a member of exactly 6 // 2 targets
    # ranked most exposed first: caught share falls, then median FPR rises
    ordered = table.sort_values(["caught_at_0_1pct", "fpr_median"], ascending=[False, True], kind="stable")
    assert ordered["rank"].tolist() == table["rank"].tolist()
    bad = CliRunner().invoke(main, ["exposed", str(out), "--attack", "nope"])
    assert bad.exit_code == 2 and "no successful rows for attack 'nope'" in bad.output


def test_validate_says_what_each_attack_needs(write_grid):
    result = CliRunner().invoke(main, ["validate", str(write_grid(POOL_GRID.replace("DEFENSES", "[ce]")))])
    assert result.exit_code == 0, result.output
    assert "protocol:      pool: 6 models per defense config and seed" in result.output
    assert "6 models to train: 6 targets, 0 shadows" in result.output
    assert ("lira(mode=online): the pool's other models as references (at least 2 IN and 2 OUT per sample)"
            in result.output)
    assert "rmia(mode=online): the pool's other models as references (at least 1 IN and 1 OUT per sample)" in result.output


def test_the_report_shows_the_pool_spread_and_the_most_exposed_samples(pool_run):
    from mibench.report.exposure import exposure
    from mibench.report.page import build_report

    out = pool_run.output_dir
    page = build_report([out])
    assert "<h2>Model pool: pooled and per target</h2>" in page
    results = pd.read_csv(out / "results.csv")
    for _, row in results.iterrows():
        assert f"{row['auc_target_mean']:.3f} ± {row['auc_target_std']:.3f}" in page
    strongest = results.loc[results["tpr_at_0_1pct_fpr"].idxmax()]
    top = exposure(load_attack_output(Store(out / "store"), strongest["attack_output"])).head(5)
    section = page[page.index("<h2>Most exposed training samples</h2>"):page.index("<h2>Failed cells</h2>")]
    cells = [c for c in section.split("<td") if "</td>" in c]
    samples = [int(c.split(">", 1)[1].split("<", 1)[0]) for i, c in enumerate(cells) if i % 10 == 5]
    assert samples == top["sample"].tolist()


def test_rmia_can_draw_its_population_from_the_targets_nonmembers(tmp_path, registry):
    # population: target-nonmembers (RMIA's authors' online z): the engine hands the attack
    # the target's non-members as ctx.population; never-trained z are the rest of the pool.
    grid = POOL_GRID.replace("DEFENSES", "[ce]").replace(
        "attacks: [loss, {name: lira, params: {mode: online}}, {name: rmia, params: {mode: online}}]",
        "attacks: [{name: rmia, params: {mode: online, population: target-nonmembers, population_size: null}},"
        " {name: rmia, params: {mode: online, population_size: null}}]")
    path = tmp_path / "grid.yaml"
    path.write_text(grid)
    summary = Runner(load_grid(path, registry), registry, tmp_path / "run", log=lambda _: None).run()
    assert summary.ok, summary.failures
    per_target = pd.read_csv(tmp_path / "run" / "per_target.csv")
    store = Store(tmp_path / "run" / "store")
    for _, row in per_target.iterrows():
        out = load_attack_output(store, row["attack_output"])
        members = out["membership"].astype(bool)
        nonmembers = int((~members).sum())
        drawn = out["info"]["population_samples"]
        if "target-nonmembers" in row["attack"]:
            assert drawn == nonmembers  # every non-member of the target has OUT references
        else:
            assert drawn == 1797 - len(members)  # the pool outside the sample set D (all evaluated)
