"""Every grid and command in the docs (README.md and docs/) runs in the suite, or says why it does not.

A ``yaml`` block with ``datasets:`` is a grid: it must pass ``mibench validate``'s checks.
A shell block is run when its mibench commands are cheap and need no data beyond the
repository (``mibench validate FILE``, ``mibench plugins``); any other shell block must be
preceded by ``<!-- not run: REASON -->``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from mibench.cli.main import main
from mibench.config.resolve import load_grid
from mibench.registry.loading import set_registry

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
NOT_RUN = re.compile(r"<!-- not run: [^>]+-->\s*$")
SHELL = {"bash", "sh", "console", "shell"}
RUNNABLE = re.compile(r"^(mibench (validate \S+\.yaml|plugins)( --json)?)$")


def blocks():
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            lang, body = match.group(1), match.group(2)
            before = text[: match.start()].rstrip().splitlines()[-1:] or [""]
            line = text[: match.start()].count("\n") + 1
            yield pytest.param(page, lang, body, before[0], id=f"{page.relative_to(ROOT)}:{line}")


ALL = list(blocks())
GRIDS = [b for b in ALL if b.values[1] == "yaml" and "datasets:" in b.values[2]]
SHELLS = [b for b in ALL if b.values[1] in SHELL]


def test_the_docs_have_grids_and_commands():
    assert len(GRIDS) >= 1 and len(SHELLS) >= 8


@pytest.mark.parametrize("page,lang,body,before", GRIDS)
def test_every_grid_in_the_docs_is_valid(page, lang, body, before, tmp_path, registry):
    if NOT_RUN.search(before):
        return
    path = tmp_path / "grid.yaml"
    path.write_text(body)
    load_grid(path, registry)  # raises ConfigError with the line of the problem


@pytest.mark.parametrize("page,lang,body,before", SHELLS)
def test_every_command_in_the_docs_runs_or_says_why_not(page, lang, body, before, registry, monkeypatch):
    if NOT_RUN.search(before):
        return
    commands = [line.split("#")[0].strip() for line in body.splitlines()]
    commands = [c for c in commands if c]
    assert commands and all(RUNNABLE.match(c) for c in commands), (
        f"{page.relative_to(ROOT)}: a shell block that is not run needs '<!-- not run: REASON -->' before it:\n{body}")
    monkeypatch.chdir(ROOT)
    set_registry(registry)
    try:
        for command in commands:
            result = CliRunner().invoke(main, shlex.split(command)[1:])
            assert result.exit_code == 0, f"{command}: {result.output}"
    finally:
        set_registry(None)
