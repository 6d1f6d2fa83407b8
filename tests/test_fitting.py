"""The fitted-learner extension point (:mod:`vlprompt.engine.fitting`) with the stand-in of
``tests/example_fitted.py``: a hand-checked fit, and a fitted run directory that ``eval``, ``predict`` and
``sweep`` accept like a trained one."""

import json

import pytest
import torch

from vlprompt import create_task
from vlprompt.cli import main
from vlprompt.engine.fitting import FitData, search_items
from vlprompt.errors import VLPromptError
from vlprompt.task import LabelSpace

SPACE = LabelSpace(["red circle", "blue star", "green moon"], template="a photo of a {}.")


def fit_data(views, labels, search, logged):
    return FitData(
        train_view=lambda v: (views[v], labels),
        split=lambda name: search[name],
        num_classes=3,
        log=logged.append,
    )


def test_stand_in_fit_by_hand(tiny_vit):
    task = create_task("prototypes", tiny_vit, SPACE, overrides=["prototypes.weights=1000,2000"])
    e = torch.eye(tiny_vit.embed_dim)
    labels = torch.tensor([0, 1, 2, 0])
    # view 0: the classes' axes scaled (normalisation undoes it); view 1: class 0's second item on axis 3
    view0 = torch.stack([3 * e[0], 2 * e[1], 5 * e[2], 7 * e[0]])
    view1 = torch.stack([e[0], e[1], e[2], e[3]])
    logged = []
    record = task.learner.fit(fit_data([view0, view1], labels, {"fewshot_val": (view0[:3], labels[:3])}, logged))
    # class 0: item 0 -> e0 in both views, item 3 -> (e0 + e3) / 2; their mean 0.75 e0 + 0.25 e3, normalised
    expected0 = torch.nn.functional.normalize(3 * e[0] + e[3], dim=0)
    assert torch.allclose(task.learner.prototypes[0], expected0, atol=1e-6)
    assert torch.allclose(task.learner.prototypes[1:], e[1:3], atol=1e-6)
    # w = 1000 and 2000 both classify the three search images right: the first is kept
    assert record["weight"] == 1000.0 and record["val_accuracy"] == 100.0
    assert record["grid"] == [(1000.0, 100.0), (2000.0, 100.0)]
    assert logged == ["weight 1000.0 (val accuracy 100.00%)"]
    assert task.predict(image_features=view0).argmax(-1).tolist() == [0, 1, 2, 0]


def test_unknown_or_empty_search_split_is_one_line(tmp_path):
    from vlprompt.config import DataConfig
    from vlprompt.data.base import DatasetSplits

    empty = DatasetSplits(name="x", image_dir=str(tmp_path), classnames=["a", "b"], train=[], val=[], test=[])
    with pytest.raises(VLPromptError, match="the fewshot_val split is empty.*search_split"):
        search_items(empty, DataConfig(dataset="folder"), "fewshot_val")


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory, tiny_vit_files, tiny_folder):
    root = tmp_path_factory.mktemp("fitted")
    cfg, weights = tiny_vit_files
    backbone = ["--backbone", str(cfg), "--pretrained", str(weights)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLPROMPT_CACHE", str(root / "cache"))
        argv = ["train", "--method", "prototypes", "--dataset", "folder", "--data-root", str(tiny_folder)]
        assert main([*argv, *backbone, "--shots", "2", "--save-logits", "--out", str(root / "run")]) == 0
        yield root / "run", backbone


def test_fitted_run_directory(fitted_run):
    run, _ = fitted_run
    results = json.loads((run / "results.json").read_text())
    fit = json.loads((run / "fit.json").read_text())
    assert results["epochs"] == 0 and results["fit"]["fit"]["weight"] == fit["fit"]["weight"]
    assert fit["fit"]["grid"] and [w for w, _ in fit["fit"]["grid"]] == [0.0, 1.0, 10.0]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["fit"] == "fit" and metrics[-1]["final"]
    from safetensors.torch import load_file

    tensors = load_file(str(run / "weights.safetensors"))
    assert sorted(tensors) == ["learner.prototypes", "learner.weight"]
    assert float(tensors["learner.weight"]) == fit["fit"]["weight"]
    assert (run / "predictions.csv").is_file() and (run / "config.yaml").is_file()


def test_eval_and_predict_accept_a_fitted_run(fitted_run, tmp_path, tiny_folder, monkeypatch):
    run, _ = fitted_run
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    data = ["--dataset", "folder", "--data-root", str(tiny_folder)]
    assert main(["eval", "--run", str(run), *data, "--save-logits", "--out", str(tmp_path / "eval")]) == 0
    ours = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert ours["accuracy"] == json.loads((run / "results.json").read_text())["accuracy"]
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(tmp_path / "eval" / "logits.safetensors"))["logits"],
                       load_file(str(run / "logits.safetensors"))["logits"])  # fmt: skip
    from vlprompt import load_run

    image = next((tiny_folder / "test").rglob("*.png"))
    prediction = load_run(run).predict([str(image)])
    assert prediction.logits.shape == (1, 4)


@pytest.mark.slow  # the toy world is generated for this module
def test_sweep_and_table_accept_a_fitted_learner(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    argv = ["sweep", "--protocol", "b2n", "--datasets", "toy", "--methods", "prototypes", "--root", str(tmp_path)]
    assert main([*argv, "--seeds", "1"]) == 0
    results = [json.loads(p.read_text()) for p in tmp_path.rglob("results.json")]
    assert len(results) == 2 and all(r["method"] == "prototypes" for r in results)
    assert main(["table", str(tmp_path)]) == 0
    assert "prototypes" in capsys.readouterr().out
