"""Hostile and impossible grid files are refused at once with one clean line (issue 9).

Each case: exit code 2, exactly one line on the output, no traceback, and nothing
written anywhere but the test's temporary directory.
"""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from mibench.cli.main import main
from tests.conftest import alias_bomb

GOOD = """name: hostile
device: cpu
datasets: [digits]
architectures: [mlp]
defenses: [ce]
attacks: [loss]
"""


CASES = {
    "alias bomb": ("validate", alias_bomb(GOOD), ":1: (top level): aliases expand the document to more than 100,000 nodes"),
    "duplicate key": ("validate", GOOD + "seeds: [0]\nseeds: [1]\n",
                      ":8: seeds: key repeated on lines 7 and 8; give it once"),
    "oversized file": ("validate", GOOD + "# " + "x" * 1_100_000 + "\n",
                       ": (top level): file is larger than 1,000,000 bytes, the most a grid file may have"),
    "5,000-digit epochs": ("validate", GOOD + "training:\n  epochs: " + "9" * 5000 + "\n",
                           ":8: training.epochs: is a number of 5,000 digits; at most 4,300 are read"),
    "infinite lr": ("validate", GOOD + "training:\n  optimizer: {lr: .inf}\n",
                    ":8: training.optimizer.lr: Input should be a finite number"),
    "huge lr": ("validate", GOOD + "training:\n  optimizer: {lr: 1e300}\n",
                ":8: training.optimizer.lr: Input should be less than or equal to 1000"),
    "huge seed": ("validate", GOOD + "seeds: [1.0e+15]\n", ":7: seeds[0]: Input should be less than or equal to 2147483647"),
    "huge epochs": ("validate", GOOD + "training:\n  epochs: 1.0e+12\n",
                    ":8: training.epochs: Input should be less than or equal to 100000"),
    "too many seeds": ("validate", GOOD + "seeds: [" + ", ".join(map(str, range(1001))) + "]\n",
                       ":7: seeds: List should have at most 1000 items after validation, not 1001"),
    "output root": ("run", GOOD + "output: /\n",
                    "error: output / is a non-empty directory that is not a mibench run directory"),
    "output a file": ("run", GOOD + "output: OUTFILE\n", "is a file, not a directory"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_grid_is_refused_in_one_line(case, tmp_path, cli_registry, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command, text, expected = CASES[case]
    outfile = tmp_path / "a-file"
    outfile.write_text("not a directory")
    path = tmp_path / "grid.yaml"
    path.write_text(text.replace("OUTFILE", str(outfile)))
    before = set(os.listdir("/"))
    result = CliRunner().invoke(main, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert expected in lines[0], lines[0]
    assert set(os.listdir("/")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "grid.yaml"]


def test_an_existing_run_directory_is_reused_and_home_is_expanded(tmp_path, cli_registry, monkeypatch):
    from mibench.config.resolve import load_grid
    from mibench.engine.layout import RunLayout

    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "grid.yaml"
    path.write_text(GOOD + "output: ~/runs/x\n")
    resolved = load_grid(path, cli_registry)
    assert resolved.grid.output_dir == tmp_path / "runs" / "x"
    layout = RunLayout(resolved.grid.output_dir)
    layout.claim()
    (layout.root / "results.csv").write_text("")
    layout.check()  # a marked directory with results in it is a run directory: no error
    assert layout.marker.is_file()


def test_ordinary_grids_keep_their_line_numbers(tmp_path, cli_registry):
    path = tmp_path / "grid.yaml"
    path.write_text(GOOD.replace("architectures: [mlp]", "architectures: &archs [mlp]")
                    + "training:\n  overrides: {mlp: {epochs: 0}}\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {path}:8: training.overrides.mlp.epochs: Input should be greater than "
                                      "or equal to 1 (got 0)")


@pytest.mark.parametrize("existing", [False, True])
def test_a_read_only_output_directory_is_one_line(tmp_path, cli_registry, existing):
    import shutil
    import subprocess

    out = tmp_path / "out"
    out.mkdir()
    if existing:
        (out / ".mibench-run").write_text("")
    # The suite runs as root (the README's test command installs Debian packages), so the
    # directory is made immutable rather than read-only: root ignores permission bits.
    assert shutil.which("chattr"), "chattr (e2fsprogs) is needed to make a directory immutable"
    assert subprocess.run(["chattr", "+i", str(out)]).returncode == 0, "chattr +i failed on this file system"
    try:
        path = tmp_path / "grid.yaml"
        path.write_text(GOOD + f"output: {out}\n")
        result = CliRunner().invoke(main, ["run", str(path)])
    finally:
        subprocess.run(["chattr", "-i", str(out)])
    assert result.exit_code == 2 and result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.strip() == f"error: output {out}: cannot write there: Operation not permitted"


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_grid_that_is_not_a_regular_file_is_refused_without_reading_it(kind, tmp_path):
    """/dev/zero has st_size 0 and never ends; a FIFO blocks its reader: both are refused from stat alone."""
    import subprocess
    import sys

    path = "/dev/zero" if kind == "device" else str(tmp_path / "grid.yaml")
    if kind == "fifo":
        os.mkfifo(path)
    done = subprocess.run([sys.executable, "-c", "from mibench.cli.main import main; main()", "validate", path],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "MIBENCH_PROGRESS": "0"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {path}: (top level): is not a regular file (a device, FIFO or socket); a grid must be a file"]


def test_many_problems_are_capped_and_long_values_are_cut(tmp_path, cli_registry):
    """10,000 bad entries give 20 lines and a count; a 500 KB value is quoted as its first 80 characters."""
    many = GOOD.replace("defenses: [ce]", "defenses: [" + ", ".join(f"nope{i}" for i in range(10_000)) + "]")
    path = tmp_path / "many.yaml"
    path.write_text(many)
    result = CliRunner().invoke(main, ["validate", str(path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and lines[0] == "errors:" and len(lines) == 22
    assert lines[-1] == f"{path}: and 9,980 more problems"
    path.write_text(GOOD.replace("defenses: [ce]", "defenses: [" + "y" * 500_000 + "]"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and len(result.output) < 1000, len(result.output)  # not 500 KB
    assert "... (500,000 characters); registered:" in result.output


def test_a_run_directory_whose_files_are_symlinks_is_refused(tmp_path, cli_registry, monkeypatch):
    """jobs.jsonl linked elsewhere used to be appended to wherever it pointed."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / ".mibench-run").write_text("a run\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (out / "jobs.jsonl").symlink_to(victim)
    path = tmp_path / "grid.yaml"
    path.write_text(GOOD + f"output: {out}\n")
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"error: output {out}: jobs.jsonl is a symbolic link; a run writes its own files there and follows no link: "
        "remove them"]
    assert victim.read_text() == "keep me\n"
