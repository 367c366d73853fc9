"""Bad grids stop before any work: one line per problem, with file, line and dotted path."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from mibench.cli.main import main
from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid

GOOD = """
name: ok
datasets: [digits]
architectures: [mlp]
defenses: [ce]
attacks: [loss]
"""

# (grid text, [(line, message fragment), ...]) -- one fragment per expected problem.
BAD_GRIDS = {
    "unknown top-level key": (
        GOOD + "epochz: 3\n",
        [(6, "epochz: unknown key; valid keys: name, output, seeds, split_seed, device, datasets, architectures, "
             "defenses, attacks, training, shadow, protocol, pool, execution")],
    ),
    "misspelled keys, each named with its nearest valid key": (
        GOOD + "trainig: {epochs: 2}\npool: {model: 3}\n",
        [(6, "trainig: unknown key; did you mean 'training'? valid keys: name, "),
         (7, "pool.model: unknown key; did you mean 'models'? valid keys: models, dataset_fraction, canaries")],
    ),
    "unknown plugin name": (
        GOOD.replace("defenses: [ce]", "defenses: [ce, nodefense]"),
        [(4, "defenses[1]: unknown defense 'nodefense'; registered: "), (4, "ce")],
    ),
    "wrong type": (
        GOOD + "training:\n  epochs: many\n",
        [(7, "training.epochs: Input should be a valid integer")],
    ),
    "out of range": (
        GOOD + "training:\n  batch_size: 0\n",
        [(7, "training.batch_size: Input should be greater than or equal to 1 (got 0)")],
    ),
    "empty list": (
        GOOD.replace("attacks: [loss]", "attacks: []"),
        [(5, "attacks: List should have at least 1 item")],
    ),
    "unknown plugin param": (
        GOOD.replace("attacks: [loss]", "attacks:\n  - name: loss\n    params: {foo: 1}"),
        [(7, "attacks[0].params.foo: unknown param of attack 'loss'; it takes: thresholds")],
    ),
    "plugin param out of range": (
        GOOD.replace("architectures: [mlp]", "architectures:\n  - name: mlp\n    params:\n      dropout: 1.5"),
        [(6, "architectures[0].params.dropout: Input should be less than 1 (got 1.5)")],
    ),
    "plugin param of wrong choice": (
        GOOD.replace("attacks: [loss]", "attacks:\n  - name: loss\n    params:\n      thresholds: per-sample"),
        [(8, "attacks[0].params.thresholds: Input should be 'per-class' or 'global'")],
    ),
    "missing required key": (
        GOOD.replace("name: ok\n", ""),
        [(1, "name: field required")],
    ),
    "bad device": (
        GOOD + "device: gpu0\n",
        [(6, "device: String should match pattern")],
    ),
    "unknown shadow training": (
        GOOD + "shadow:\n  training: nope\n",
        [(7, "shadow.training: must be 'adaptive' or a defense name: unknown defense 'nope'")],
    ),
    "bad sweep value": (
        GOOD.replace("architectures: [mlp]", "architectures:\n  - name: mlp\n    sweep:\n      dropout: [0.1, 2.0]"),
        [(6, "architectures[0].sweep.dropout[1]: Input should be less than 1 (got 2.0)")],
    ),
    "two problems at once": (
        GOOD.replace("attacks: [loss]", "attacks: [lose]") + "seeds: [1, 1]\n",
        [(5, "attacks[0]: unknown attack 'lose'"), (6, "seeds: Value error, seeds must be distinct")],
    ),
    "override of an architecture not in the grid": (
        GOOD + "training:\n  overrides:\n    mlpp: {batch_size: 8}\n",
        [(8, "training.overrides.mlpp: not an architecture of this grid; architectures: mlp")],
    ),
    "architecture that cannot take the dataset": (
        GOOD.replace("architectures: [mlp]", "architectures: [mlp, vgg11-bn]"),
        [(3, "architectures[1]: vgg11-bn cannot take digits (1x8x8 inputs, 10 classes): ")],
    ),
    "not a mapping": (
        "- just\n- a list\n",
        [(1, "a grid file must be a mapping")],
    ),
}


@pytest.mark.parametrize("case", list(BAD_GRIDS))
def test_bad_grid_messages(case, write_grid, registry):
    text, expected = BAD_GRIDS[case]
    path = write_grid(text)
    with pytest.raises(ConfigError) as info:
        load_grid(path, registry)
    lines = str(info.value).splitlines()
    for line_no, fragment in expected:
        assert any(ln.startswith(f"{path}:{line_no}: ") and fragment in ln for ln in lines), (fragment, lines)
    assert len(lines) == len({ln for ln, _ in expected}) or case == "unknown plugin name"


def test_yaml_syntax_error_names_the_line(write_grid, registry):
    path = write_grid(GOOD + "training: {epochs: 3\n")
    with pytest.raises(ConfigError, match=rf"^{path}:7: \(top level\): YAML syntax error"):
        load_grid(path, registry)


def test_missing_file(tmp_path, registry):
    with pytest.raises(ConfigError, match="nope.yaml: \\(top level\\): file not found"):
        load_grid(tmp_path / "nope.yaml", registry)


def test_good_grid_resolves(write_grid, registry):
    resolved = load_grid(write_grid(GOOD), registry)
    assert [d.name for d in resolved.defenses] == ["ce"]
    assert resolved.grid.training.epochs == 30


@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_reports_one_line_and_exit_code_2(command, write_grid, cli_registry):
    path = write_grid(GOOD.replace("defenses: [ce]", "defenses: [nodefense]"))
    result = CliRunner().invoke(main, [command, str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.strip().startswith(f"error: {path}:4: defenses[0]: unknown defense 'nodefense'")
    assert len(result.output.strip().splitlines()) == 1


def test_console_script_exit_code_without_traceback(write_grid):
    path = write_grid(GOOD + "training:\n  epochs: 0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mibench", "validate", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{path}:7: training.epochs: Input should be greater than or equal to 1" in proc.stderr


def test_sweep_expands_to_one_config_per_combination(write_grid, registry):
    text = GOOD.replace(
        "architectures: [mlp]",
        "architectures:\n  - name: mlp\n    params: {hidden: [8]}\n    sweep: {dropout: [0.0, 0.5]}",
    )
    resolved = load_grid(write_grid(text), registry)
    assert [a.label for a in resolved.architectures] == ["mlp(hidden=[8], dropout=0.0)", "mlp(hidden=[8], dropout=0.5)"]


def test_device_override_is_validated_like_the_grid(write_grid, cli_registry):
    path = write_grid(GOOD)
    result = CliRunner().invoke(main, ["run", str(path), "--device", "gpu:0"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith(f"error: {path}: device: String should match pattern")


def test_cuda_without_a_gpu_warns_in_validate_and_stops_run(write_grid, cli_registry, monkeypatch, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = write_grid(GOOD + "device: cuda\n")
    validate = CliRunner().invoke(main, ["validate", str(path)])
    assert validate.exit_code == 0
    assert "warning: device 'cuda': torch" in validate.output and "sees no CUDA device here" in validate.output
    run = CliRunner().invoke(main, ["run", str(path), "--output", str(tmp_path / "out")])
    assert run.exit_code == 2 and "error: device 'cuda'" in run.output
    assert not (tmp_path / "out").exists()


def test_the_documented_grid_example_is_valid(tmp_path, registry):
    from pathlib import Path

    section = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "grid.md").read_text()
    example = section[section.index("```yaml\n") + 8 : section.index("```", section.index("```yaml\n") + 8)]
    path = tmp_path / "readme.yaml"
    path.write_text(example)
    resolved = load_grid(path, registry)
    assert resolved.grid.training.for_architecture("small-cnn").batch_size == 64


def test_validate_refuses_an_architecture_without_features(write_grid, cli_registry):
    path = write_grid(GOOD.replace("architectures: [mlp]", "architectures: [mlp, logits-only]"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == (f"error: {path}:3: architectures[1]: logits-only cannot take digits (1x8x8 inputs, "
                                      "10 classes): forward must return (logits, features), two tensors; it returned "
                                      "a Tensor")


def test_validate_refuses_a_pool_that_is_not_n_c_h_w(write_grid, cli_registry):
    path = write_grid(GOOD.replace("datasets: [digits]", "datasets: [flat-table]"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == (f"error: {path}:2: datasets[0]: flat-table: dataset 'flat-table': inputs must be "
                                      "C x H x W (the pool N x C x H x W), got (8,)")
