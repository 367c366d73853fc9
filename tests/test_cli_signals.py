"""Ctrl-C: exit code 130, one line and no traceback; a rerun of an interrupted run resumes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from mibench.cli.main import main
from tests.conftest import DIGITS_GRID
import pytest

pytestmark = pytest.mark.slow  # end to end: trains models or starts processes

ENV = {**os.environ, "MIBENCH_PROGRESS": "0"}


def _default_sigint() -> None:
    # A child started from a shell without job control may inherit SIGINT ignored;
    # Python turns SIGINT into KeyboardInterrupt only where it is not ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def mibench_run(grid: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mibench", "run", str(grid), "--output", str(out), "--executor", "serial"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            cwd=grid.parent, preexec_fn=_default_sigint)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended (code {proc.returncode}) before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting for the run to finish a model"
        time.sleep(0.05)


def test_ctrl_c_stops_a_run_with_130_and_a_rerun_finishes_it(tmp_path):
    # Enough epochs that the three models take a few seconds to train.
    grid = tmp_path / "grid.yaml"
    grid.write_text(DIGITS_GRID.replace("epochs: 12", "epochs: 200"))
    out = tmp_path / "out"
    proc = mibench_run(grid, out)
    lines: list[str] = []  # stderr, line by line, as the run writes it
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stderr), daemon=True)
    reader.start()
    try:
        # Interrupt once the run has started and its first model is stored ("done in").
        wait_for(lambda: (out / "run.json").is_file() and any("done in" in line for line in list(lines)), proc)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        reader.join(timeout=30)
        stdout = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = "\n".join(lines)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    message = f"interrupted; finished work is kept in {out} and a rerun resumes it"
    # The runner's progress lines, then the one line of the interrupt.
    assert lines[-1] == message and sum("interrupted" in line for line in lines) == 1, stderr
    assert "leaderboard" not in stdout
    finished_before = sum("done in" in line for line in lines)

    rerun = subprocess.run([sys.executable, "-m", "mibench", "run", str(grid), "--output", str(out), "--executor", "serial"],
                           capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    trained = [line for line in rerun.stderr.splitlines() if line.startswith("train ")]
    assert len(trained) == 3 - finished_before, rerun.stderr  # the models finished before the interrupt are kept
    assert (out / "results.csv").is_file() and "leaderboard: " in rerun.stdout


def test_ctrl_c_in_another_command_says_interrupted(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("mibench.cli.validate_cmd.grid", interrupt)
    grid = tmp_path / "grid.yaml"
    grid.write_text(DIGITS_GRID)
    result = CliRunner().invoke(main, ["validate", str(grid)])
    assert result.exit_code == 130
    assert result.output == "interrupted\n"


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc), the forkserver and its workers included."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_a_stopped_local_run(tmp_path, sig):
    """SIGTERM stops a local run like Ctrl-C (one line, exit 143); after SIGTERM or kill -9 no process survives 5 s."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(DIGITS_GRID.replace("epochs: 12", "epochs: 400"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "mibench", "run", str(grid), "--output", str(out),
                             "--executor", "local", "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, cwd=tmp_path)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: sum(line.startswith("train ") for line in list(lines)) >= 2, proc)
        workers = _descendants(proc.pid)
        assert len(workers) >= 3, workers  # the forkserver and two workers, at least
        proc.send_signal(sig)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not [p for p in workers if _alive(p)], "processes outlived the run"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in _descendants(proc.pid):
            os.kill(p, signal.SIGKILL)
    reader.join(timeout=10)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143
        assert lines[-1] == f"terminated; finished work is kept in {out} and a rerun resumes it", lines
        assert not any("Traceback" in line for line in lines)
    else:
        assert proc.returncode == -signal.SIGKILL
