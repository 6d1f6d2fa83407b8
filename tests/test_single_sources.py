"""One definition per concept: the shared constants are assigned in one module, the command line's choices are
those constants, and one top-k serves predictions.csv, ``Prediction.topk`` and ``vlprompt predict``."""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vlprompt"
CONSTANTS = (
    "PRECISIONS",
    "RESOLVED_PRECISIONS",
    "SUBSAMPLES",
    "LABEL_SPACES",
    "RESULTS",
    "METRICS",
    "WEIGHTS",
    "WEIGHTS_META",
    "TOPK",
)
FILE_NAMES = ("results.json", "metrics.jsonl", "predictions.csv", "weights.json", "weights.safetensors")


def module_level_assignments():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for target in targets:
                if isinstance(target, ast.Name):
                    yield path, target.id, node.value


def test_shared_constants_are_assigned_once():
    counts = Counter(name for _, name, _ in module_level_assignments() if name in CONSTANTS)
    assert counts == Counter(dict.fromkeys(CONSTANTS, 1))


def test_run_file_names_are_spelled_once_outside_docstrings():
    spelled = Counter()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body and isinstance(n.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in FILE_NAMES and id(node) not in docstrings:
                spelled[node.value] += 1
    assert spelled == Counter(dict.fromkeys(FILE_NAMES, 1))


def choices(parser: argparse.ArgumentParser, command: str, flag: str):
    """The choices of ``flag`` of ``command`` (``"analyze feature-shift"``: a nested sub-command)."""
    for name in command.split():
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return next(a for a in parser._actions if flag in a.option_strings).choices


def test_command_line_choices_are_the_constants():
    from vlprompt.cli import build_parser
    from vlprompt.config import LABEL_SPACES, SUBSAMPLES
    from vlprompt.protocols import PROTOCOLS

    parser = build_parser()
    for command in ("eval", "corrupt", "analyze feature-shift"):
        assert choices(parser, command, "--label-space") is LABEL_SPACES
    for command in ("train", "eval", "zeroshot"):
        assert choices(parser, command, "--subsample") is SUBSAMPLES
    for command in ("train", "sweep", "table", "presets", "convert"):
        assert choices(parser, command, "--protocol") is PROTOCOLS


def test_one_top_k_for_every_ranking():
    import torch

    from vlprompt.engine.evaluation import Evaluation, top_k
    from vlprompt.pipeline.trained import Prediction
    from vlprompt.predict import prediction_rows

    logits = torch.tensor([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    values, index = top_k(logits, 2)
    assert index.tolist() == [[1, 2], [2, 0]] and values.tolist() == [[3.0, 2.0], [5.0, 0.0]]
    assert top_k(logits, 5)[1].tolist() == [[1, 2, 0], [2, 0, 1]]  # k above the classes: all of them

    probs = logits.softmax(-1)
    names = ["a", "b", "c"]
    assert Prediction(logits, names).topk(2)[0] == [
        ("b", pytest.approx(float(probs[0, 1]))),
        ("c", pytest.approx(float(probs[0, 2]))),
    ]
    rows = prediction_rows(["x.png", "y.png"], logits, names, 5)
    assert [[t["class"] for t in r["topk"]] for r in rows] == [["b", "c", "a"], ["c", "a", "b"]]

    class Item:
        relpath = "x.png"

    evaluation = Evaluation(index=torch.tensor([0]), labels=torch.tensor([2]), logits=logits[:1])
    row = evaluation.prediction_rows([Item()], names)[0]
    assert (row["top1"], row["top2"], row["top3"], row["score1"]) == (1, 2, 0, 3.0)  # raw logits, as before
    assert "top4" not in row
