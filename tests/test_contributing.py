"""CONTRIBUTING.md's worked examples are the code the tests run: each snippet is part of its example module (the
add-on and the learner go through the composition matrix, the protocol through tests/test_protocols.py, the tower
adapter through tests/test_towers.py)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "section, example",
    [
        ("## Checklist: add a learner", "example_learner.py"),
        ("## Checklist: add an add-on", "example_addon.py"),
        ("## Checklist: add a protocol", "example_protocol.py"),
    ],
)
def test_contributing_shows_the_example_as_it_is(section, example):
    text = (ROOT / "CONTRIBUTING.md").read_text().split(section, 1)[1].split("\n## ", 1)[0]
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert snippet.strip() and snippet in (ROOT / "tests" / example).read_text()


def test_the_examples_are_registered_for_the_matrices():
    from vlprompt.registry import ADDONS, LEARNERS

    assert "text_adapter" in LEARNERS.names() and "prompt_l2" in ADDONS.names()  # by tests/conftest.py
