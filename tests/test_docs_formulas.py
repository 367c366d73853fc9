"""The formulas docs/plugins.md shows for the built-in attacks are the code's: its >>> examples run."""

import doctest
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def test_the_docs_examples_compute_what_the_code_computes():
    result = doctest.testfile(str(DOCS), module_relative=False, report=True,
                              optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10, f"docs/plugins.md has {result.attempted} examples; its >>> blocks were not found"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in docs/plugins.md failed (see above)"
