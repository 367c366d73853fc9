"""docs/plugins.md documents the whole public SDK, and the SDK exports what it lists."""

import ast
import importlib
import re
from pathlib import Path

import pytest

import mibench.sdk

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
FENCED = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def prose() -> str:
    """docs/plugins.md without its fenced code blocks."""
    return FENCED.sub("", DOCS.read_text())


def code_blocks(language: str) -> list[str]:
    return [body for lang, body in FENCED.findall(DOCS.read_text()) if lang == language]


@pytest.mark.parametrize("name", mibench.sdk.__all__)
def test_every_sdk_name_is_documented(name):
    # In backticks in the prose, not only inside an example.
    assert f"`{name}`" in prose(), f"mibench.sdk.{name} is not documented in docs/plugins.md"


def test_every_sdk_name_is_importable():
    assert len(set(mibench.sdk.__all__)) == len(mibench.sdk.__all__)
    namespace: dict = {}
    exec("from mibench.sdk import *", namespace)
    for name in mibench.sdk.__all__:
        assert getattr(mibench.sdk, name) is namespace[name]
        exec(f"from mibench.sdk import {name}", {})
    assert importlib.import_module("mibench.sdk.hooks") is mibench.sdk.hooks


def test_python_examples_parse_and_import_what_the_sdk_exports():
    blocks = code_blocks("python")
    assert len(blocks) > 10
    for block in blocks:
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mibench"):
                if node.module == "mibench.sdk":
                    missing = {a.name for a in node.names} - set(mibench.sdk.__all__)
                    assert not missing, f"docs/plugins.md imports {missing} from mibench.sdk, which does not export it"
