"""CONTRIBUTING.md's worked examples are the code the tests run: each snippet is part of its example module (the
add-on and the learner go through the composition matrix, the protocol through tests/test_protocols.py, the tower
adapter through tests/test_towers.py)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "section, example",
    [
        ("## Checklist: add a learner", "example_learner"),
        ("## Checklist: add an add-on", "example_addon.py"),
        ("## Checklist: add a protocol", "example_protocol.py"),
    ],
)
def test_contributing_shows_the_example_as_it_is(section, example):
    text = (ROOT / "CONTRIBUTING.md").read_text().split(section, 1)[1].split("\n## ", 1)[0]
    path = ROOT / "tests" / example
    code = "".join(f.read_text() for f in sorted(path.glob("*.py"))) if path.is_dir() else path.read_text()
    snippets = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    assert snippets and all(snippet.strip() and snippet in code for snippet in snippets)


def test_the_examples_are_registered_for_the_matrices():
    from vlprompt.registry import ADDONS, LEARNERS

    assert "text_adapter" in LEARNERS.names() and "prompt_l2" in ADDONS.names()  # by tests/conftest.py


def test_the_example_learner_package_declares_every_fact_where_the_builtins_do(tmp_path):
    """Its preset, published table, recipe and reference key map reach the generic code through the same
    collectors as the built-in components' (nothing lists the components)."""
    import torch

    from vlprompt.config import make_config
    from vlprompt.convert.keymap import canonical_method, to_vlprompt
    from vlprompt.results.published import lookup
    from vlprompt.sweep.recipes import build_spec, recipes

    assert make_config("text_adapter", protocol="b2n").sources["text_adapter.alpha"] == (
        "preset text_adapter:b2n (the example's paper (Table 1 settings))"
    )
    assert lookup("b2n", "text_adapter", "ViT-B/16").rows["average"] == {"base": 80, "new": 70, "H": 74.67}
    assert recipes()["text-adapter-b2n"].methods == ("zeroshot", "text_adapter")
    assert build_spec(tmp_path, recipe="text-adapter-b2n", datasets=["toy"]).methods == ("zeroshot", "text_adapter")
    converted = to_vlprompt(canonical_method("text_adapter"), {"adapter.weight": torch.eye(3)})
    assert converted.trainer == "TextAdapterTrainer" and torch.equal(converted.tensors["learner.weight"], torch.eye(3))
