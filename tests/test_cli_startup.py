"""The command line starts light: a grid that is bad by its schema alone is refused before torch
and the plugins load, in the same lines the full resolution gives it; `mibench roc` refuses a
damaged results.csv in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import mibench.sdk
from mibench.cli.common import check_schema
from mibench.cli.main import main
from mibench.config.errors import ConfigError
from mibench.config.resolve import load_grid
from tests.conftest import alias_bomb

GOOD = """name: ok
device: cpu
datasets: [digits]
architectures: [mlp]
defenses: [ce]
attacks: [loss]
"""
ENV = {**os.environ, "MIBENCH_PROGRESS": "0"}


def mibench_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120)


def imported_torch(importtime_stderr: str) -> bool:
    return any(line.rstrip().endswith(" torch") for line in importtime_stderr.splitlines())


def test_validate_refuses_an_unknown_key_before_importing_torch(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD + "epochz: 3\n")
    plain = mibench_cli("-m", "mibench", "validate", str(path), cwd=tmp_path)
    assert plain.returncode == 2
    assert plain.stderr == (f"error: {path}:7: epochz: unknown key; valid keys: name, output, seeds, split_seed, "
                            "device, datasets, architectures, defenses, attacks, training, shadow, protocol, pool, "
                            "execution\n")
    assert plain.stdout == ""
    timed = mibench_cli("-X", "importtime", "-m", "mibench", "validate", str(path), cwd=tmp_path)
    assert timed.returncode == 2
    assert f"error: {path}:7: epochz: unknown key" in timed.stderr
    assert "import time:" in timed.stderr  # the check below reads real importtime output
    assert not imported_torch(timed.stderr)


def test_run_refuses_a_bad_device_override_before_importing_torch(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GOOD)
    timed = mibench_cli("-X", "importtime", "-m", "mibench", "run", str(path), "--device", "gpu:0", cwd=tmp_path)
    assert timed.returncode == 2
    assert f"error: {path}: device: String should match pattern" in timed.stderr
    assert not imported_torch(timed.stderr)
    assert list(tmp_path.iterdir()) == [path]


def test_the_sdk_and_the_grid_schema_import_without_torch(tmp_path):
    code = ("import sys, mibench.sdk, mibench.config.grid, mibench.cli.main; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert set(mibench.sdk.__all__) <= set(dir(mibench.sdk))")
    proc = mibench_cli("-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_every_sdk_name_has_its_submodule():
    import importlib

    for name, module in mibench.sdk._SOURCES.items():  # the one table: every name is where it says
        assert hasattr(importlib.import_module(f"mibench.sdk.{module}"), name) or module == name, name
    assert set(mibench.sdk.__all__) < set(mibench.sdk._SOURCES)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        mibench.sdk.Nope  # noqa: B018


# Grids that are bad by their text or schema alone: the early check and the full
# resolution must give them the very same lines.
SCHEMA_ONLY = {
    "unknown top-level key": GOOD + "epochz: 3\n",
    "wrong type": GOOD + "training:\n  epochs: many\n",
    "out of range": GOOD + "training:\n  batch_size: 0\n",
    "empty list": GOOD.replace("attacks: [loss]", "attacks: []"),
    "missing required key": GOOD.replace("name: ok\n", ""),
    "bad device": GOOD.replace("device: cpu", "device: gpu0"),
    "repeated seeds": GOOD + "seeds: [1, 1]\n",
    "several problems": "seeds: [1, 1]\n" + GOOD.replace("attacks: [loss]", "attacks: []") + "training: {epochs: 0}\n",
    "bad entry": GOOD.replace("defenses: [ce]", "defenses: [{params: {}}, 3]"),
    "bad override": GOOD.replace("architectures: [mlp]", "architectures: &archs [mlp]")
    + "training:\n  overrides: {mlp: {epochs: 0}}\n",
    "infinite lr": GOOD + "training:\n  optimizer: {lr: .inf}\n",
    "huge seed": GOOD + "seeds: [1.0e+15]\n",
    "too many seeds": GOOD + "seeds: [" + ", ".join(map(str, range(1001))) + "]\n",
    "not a mapping": "- just\n- a list\n",
    "empty file": "",
    "yaml syntax error": GOOD + "training: {epochs: 3\n",
    "alias bomb": alias_bomb(GOOD),
    "repeated key": GOOD + "seeds: [0]\nseeds: [1]\n",
    "oversized file": GOOD + "# " + "x" * 1_100_000 + "\n",
}


@pytest.mark.parametrize("case", SCHEMA_ONLY)
def test_the_early_check_words_problems_as_the_full_resolution(case, tmp_path, registry):
    path = tmp_path / "grid.yaml"
    path.write_text(SCHEMA_ONLY[case])
    with pytest.raises(ConfigError) as early:
        check_schema(str(path))
    with pytest.raises(ConfigError) as full:
        load_grid(str(path), registry)
    assert str(early.value) == str(full.value)
    assert early.value.problems == full.value.problems


def test_the_early_check_words_a_device_override_as_the_full_resolution(tmp_path, registry):
    path = tmp_path / "grid.yaml"
    path.write_text(GOOD)
    with pytest.raises(ConfigError) as early:
        check_schema(str(path), "gpu:0")
    with pytest.raises(ConfigError) as full:
        load_grid(str(path), registry, "gpu:0")
    assert str(early.value) == str(full.value)


def test_the_early_check_passes_what_only_the_plugins_can_refuse(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GOOD.replace("defenses: [ce]", "defenses: [nodefense]"))
    check_schema(str(path))  # the full resolution reports the unknown defense


def test_validate_help_shows_the_default_throughput():
    from mibench.engine.estimate import DEFAULT_TFLOPS

    result = CliRunner().invoke(main, ["validate", "--help"])
    assert result.exit_code == 0
    assert f"[default: {DEFAULT_TFLOPS}" in " ".join(result.output.split())


def test_validate_uses_the_default_throughput(tmp_path, cli_registry):
    from mibench.engine.estimate import DEFAULT_TFLOPS

    path = tmp_path / "grid.yaml"
    path.write_text(GOOD)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"at an assumed {DEFAULT_TFLOPS:g} TFLOP/s" in result.output


# ------------------------------------------------------------------ mibench roc

HEADER = ("run,dataset,architecture,defense,defense_name,defense_params,swept,seed,attack,attack_name,attack_params,"
          "threshold_mode,shadow_count,shadow_training,status,train_acc,test_acc,auc,tpr_at_1pct_fpr,"
          "tpr_at_0_1pct_fpr,balanced_acc,n_members,n_nonmembers,defense_info,error,config_hash,target_model,"
          "attack_output,mibench_version,plugin_versions,torch_version\n")
ROW = ('digits-test,digits,mlp(hidden=[64]),ce,ce,{},{},0,loss,loss,"{""thresholds"": ""per-class""}",per-class,2,'
       "adaptive,ok,0.806667,0.775056,0.554873,0.00444444,0.00222222,0.535048,450,449,{},,bc43d42962b512b09fc6,"
       '28523343d0fc954e542d,33ac179fd58f5c4f88df,0.2.0,"{""mibench"": ""0.2.0""}",2.14.1\n')

DAMAGED = {
    "truncated in a quoted field": (HEADER + ROW[: ROW.index('"{') + 5], "not a readable CSV"),
    "truncated in a row": (HEADER + ROW[: ROW.index(",ok,") + 8], "line 2 is incomplete (the file looks truncated)"),
    "binary garbage": (bytes(range(128, 256)) * 20, "not a readable CSV"),
    "zeros": (b"\0" * 4096, "missing columns status, seed"),
    "empty": ("", "the file is empty"),
    "missing columns": ("run,dataset,seed\ndigits-test,digits,0\n", "missing columns status, architecture"),
    "text in a number column": (HEADER + ROW.replace(",450,449,", ",450,many,"), "column n_nonmembers"),
    "null bytes in a key": (HEADER + ROW.replace("33ac179fd58f5c4f88df", "33ac\0\0\0"),
                            "line 2: attack_output is not the key of a stored output"),
    "a key whose output is missing": (HEADER + ROW, "names a stored attack output that is missing"),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_roc_refuses_a_damaged_results_csv_in_one_line(case, tmp_path):
    content, fragment = DAMAGED[case]
    csv = tmp_path / "results.csv"
    if isinstance(content, bytes):
        csv.write_bytes(content)
    else:
        csv.write_text(content)
    result = CliRunner().invoke(main, ["roc", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {csv}: ") and fragment in lines[0], lines[0]


def test_roc_refuses_a_directory_without_results_csv(tmp_path):
    result = CliRunner().invoke(main, ["roc", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {tmp_path}: no results.csv here; give the output directory of a "
                                     "mibench run")


TABLE_DAMAGE = {
    "text in a metric": (HEADER + ROW.replace(",0.554873,", ",abc,"), "line 2: column auc holds 'abc', not a number"),
    "cut in the middle of a line": (HEADER + ROW + ROW[: ROW.index(",ok,") + 8],
                                    "line 3 is incomplete (the file looks truncated)"),
}


@pytest.mark.parametrize("command", ["leaderboard", "report", "roc", "exposed"])
@pytest.mark.parametrize("case", TABLE_DAMAGE)
def test_every_reader_of_results_csv_refuses_the_same_damage_in_one_line(command, case, tmp_path):
    content, fragment = TABLE_DAMAGE[case]
    (tmp_path / "results.csv").write_text(content)
    args = [command, str(tmp_path)] + (["--output", str(tmp_path / "r.html")] if command == "report" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.output, result.output
