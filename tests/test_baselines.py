"""The few-shot baselines (issue 21): CLIP-Adapter, Tip-Adapter(-F) and the linear probe — hand-checked formulas,
lpclip's C search, the solvers against scikit-learn, refusals, and runs from the CLI and the Python API."""

import json

import pytest
import torch

from vlprompt import create_task
from vlprompt.cli import main
from vlprompt.engine.fitting import FitData
from vlprompt.errors import VLPromptError
from vlprompt.methods.linear_probe.logistic import TorchLBFGS, fit_sklearn, search_c
from vlprompt.task import LabelSpace

SPACE = LabelSpace(["red circle", "blue star", "green moon"], template="a photo of a {}.")


def test_clip_adapter_mixes_the_adapted_features_by_hand(tiny_vit):
    task = create_task("clip_adapter", tiny_vit, SPACE, overrides=["clip_adapter.ratio=0.25"])
    adapter, e = task.learner.adapter, tiny_vit.embed_dim
    with torch.no_grad():  # W1 keeps the first E/4 coordinates, W2 puts them back
        adapter[0].weight.copy_(torch.eye(e)[: e // 4])
        adapter[2].weight.copy_(torch.eye(e)[:, : e // 4])
    f = torch.zeros(1, e)
    f[0, 0], f[0, 1], f[0, e - 1] = 2.0, -3.0, 4.0
    # A(f) = ReLU(W2 ReLU(W1 f)) = (2, 0, ..., 0); f' = 0.25 A(f) + 0.75 f
    expected = 0.75 * f
    expected[0, 0] += 0.5
    assert torch.allclose(task.learner.adapt_image_features(f), expected)
    assert torch.allclose(task.predict(image_features=f), tiny_vit.logits(expected, task.learner.classifier))


def test_clip_adapter_refusals_are_one_line(tiny_vit):
    with pytest.raises(VLPromptError, match="needs prompt_vectors"):
        create_task("clip_adapter+nemesis", tiny_vit, SPACE, overrides=["nemesis.weight=1"])
    with pytest.raises(VLPromptError, match="clip_adapter.ratio must be in"):
        create_task("clip_adapter", tiny_vit, SPACE, overrides=["clip_adapter.ratio=2"])
    with pytest.raises(VLPromptError, match="is fitted, not trained"):
        create_task("tip_adapter+dept", tiny_vit, SPACE)


def fit_data(train, labels, search, k=3):
    return FitData(lambda v, crop_scale=0.08: (train[v], labels), search.__getitem__, k, lambda line: None)


def test_tip_adapter_cache_and_search_by_hand(tiny_vit):
    overrides = ["tip_adapter.augment_views=2", "tip_adapter.beta_steps=2", "tip_adapter.alpha_steps=2"]
    task = create_task("tip_adapter", tiny_vit, SPACE, overrides=[*overrides, "tip_adapter.beta_scale=2.1"])
    learner, e = task.learner, torch.eye(tiny_vit.embed_dim)
    labels = torch.tensor([0, 1, 2])
    views = [torch.stack([2 * e[0], e[1], e[2]]), torch.stack([2 * e[3], e[1], 3 * e[2]])]
    search = {"val": (torch.stack([e[0], e[1], e[2]]), labels)}
    record = learner.fit(fit_data(views, labels, search))
    # keys: the normalised mean of the unnormalised views -> item 0: (e0 + e3) / sqrt(2), [E, N] layout
    assert torch.allclose(learner.cache_keys[:, 0], (e[0] + e[3]) / 2**0.5)
    assert torch.equal(learner.cache_values, torch.eye(3))
    assert record["beta_list"] == [0.1, 1.1] and record["alpha_list"] == pytest.approx([0.1, 6.55])
    f = search["val"][0]
    zero_shot = 100.0 * f @ learner.classifier.t()
    beta, alpha = record["beta"], record["alpha"]
    expected = zero_shot + alpha * torch.exp(-beta * (1 - f @ learner.cache_keys)) @ torch.eye(3)
    assert torch.allclose(learner.tip_logits(f, beta, alpha), expected, atol=1e-4)
    assert record["val_acc"] == max(record["val_acc_grid_beta_major"])
    # another label space: zero-shot CLIP (100 · cos), the cache holds the trained classes only
    task.set_label_space(LabelSpace(["a", "b", "c", "d"], template="a photo of a {}."))
    other = task.predict(image_features=f)
    assert torch.allclose(other, 100.0 * f @ task.learner.classifier.t(), atol=1e-4)


def test_lpclip_search_path_by_hand():
    """A fake solver whose val accuracy is a function of C: the grid's first best, then the bisection rounds."""
    fits = []

    def fit(c):
        fits.append(c)
        return torch.tensor([[c]]), torch.zeros(1)

    def accuracy_of(c):  # best around C = 3
        return 1.0 / (1.0 + abs(torch.log10(torch.tensor(c)) - 0.5))

    x = torch.zeros(1, 1)

    import vlprompt.methods.linear_probe.logistic as logistic

    original = logistic.accuracy
    logistic.accuracy = lambda clf, xv, yv: float(accuracy_of(float(clf[0])))
    try:
        _, record = search_c(fit, x, torch.zeros(1), [100.0, 1.0, 0.01], steps=2)
    finally:
        logistic.accuracy = original
    assert record["c_peak"] == 1.0  # |log10 C - 0.5|: 1.5, 0.5, 2.5
    first = record["rounds"][0]
    assert (first["c_left"], first["c_right"]) == pytest.approx((0.1, 10.0))
    # right wins (|1 - 0.5| < |-1 - 0.5|): the next interval is [10^0, 10^1]
    second = record["rounds"][1]
    assert (second["c_left"], second["c_right"]) == pytest.approx((1.0, 10.0))
    assert record["c"] == pytest.approx(10.0) or record["c"] == pytest.approx(1.0)
    assert fits[:3] == [100.0, 1.0, 0.01] and len(fits) == 3 + 2 * 2


def test_torch_solver_reaches_scikit_learns_optimum():
    torch.manual_seed(0)
    centers = 3 * torch.randn(4, 8)
    y = torch.arange(4).repeat(10)
    x = centers[y] + torch.randn(40, 8)
    w_sk, b_sk = fit_sklearn(x, y, 1.0, 4)
    w_t, b_t = TorchLBFGS()(x, y, 1.0, 4)
    test = centers[torch.arange(4).repeat(25)] + 2 * torch.randn(100, 8)
    assert torch.equal((test @ w_t.t() + b_t).argmax(-1), (test @ w_sk.t() + b_sk).argmax(-1))
    # scikit-learn's lbfgs stops at its gradient tolerance (tol 1e-4): its weights are ~1e-3 from the optimum
    assert (w_t - w_sk).abs().max() / w_sk.abs().max() < 3e-3


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # importing it now raises ImportError
    with pytest.raises(VLPromptError, match=r"needs scikit-learn: pip install 'vlprompt\[probe\]'"):
        fit_sklearn(torch.zeros(2, 2), torch.tensor([0, 1]), 1.0, 2)


def test_linear_probe_refuses_other_classes(tiny_vit):
    task = create_task("linear_probe", tiny_vit, SPACE)
    with pytest.raises(VLPromptError, match="linear_probe has weights for its 3 trained classes only"):
        task.set_label_space(LabelSpace(["a", "b"], template="a photo of a {}."))


@pytest.mark.parametrize(
    "method, extra",
    [
        ("clip_adapter", ["--epochs", "1", "--batch-size", "4"]),
        ("tip_adapter", ["--set", "tip_adapter.augment_views=2", "--set", "tip_adapter.search_split=fewshot_val"]),
        (
            "tip_adapter_f",
            ["--epochs", "1", "--set", "tip_adapter_f.augment_views=2", "--set", "train.optimizer=adamw"],
        ),
        ("linear_probe", ["--set", "linear_probe.steps=1", "--set", "linear_probe.grid=1,0.01"]),
    ],
)
def test_baselines_train_and_evaluate_from_the_cli(method, extra, cli_env, tiny_folder, tmp_path):
    data = ["--dataset", "folder", "--data-root", str(tiny_folder), "--shots", "2"]
    run = tmp_path / "run"
    assert main(["train", "--method", method, *data, *cli_env, *extra, "--out", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["method"] == method and results["num_images"] == 16
    assert ("fit" in results) == (method != "clip_adapter")
    assert main(["eval", "--run", str(run), *data[:4], "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["accuracy"] == results["accuracy"]
