"""Parity of the few-shot baselines with their unmodified reference code, from its outputs in
``../shared/reference`` (tiny OpenAI-architecture CLIP, real DTD images, 4 shots, seed 1; see notes.md there):

* CLIP-Adapter (gaopengcuhk/CLIP-Adapter on CoOp/Dassl): each reference checkpoint converted with ``vlprompt
  convert`` predicts the reference's label for every base and new test image (logits within 1e-4); trained in
  parity mode from the reference's initial tensors, the per-step losses and the final adapter match within 1e-4
  relative;
* Tip-Adapter (gaopengcuhk/Tip-Adapter): fitted from the same few-shot items, the cache, the searched β/α, the
  val accuracy of every grid point and the per-image logits are the reference's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vlprompt.cli import main
from vlprompt.convert import to_vlprompt

LOGIT_TOL = 1e-4
TENSOR_TOL = 1e-4
PARITY_MODE = ["--set", "data.train_order=sequential", "--set", "data.train_transform=resize"]


@pytest.fixture(scope="module")
def shared(shared):
    """The reference runs' flags (``parity/conftest.py``) with CLIP-Adapter's and Tip-Adapter's DTD template."""
    return {**shared, "data": [*shared["data"], "--template", "{} texture."]}


def assert_same_predictions(run: Path, folder: Path, space: str, key: str = "logits") -> None:
    """``run``'s logits.safetensors against the reference's ``preds_<space>``: the same test order and labels,
    logits within 1e-4, the same predicted label for every image."""
    preds = json.loads((folder / f"preds_{space}.json").read_text())
    ref = load_file(str(folder / f"preds_{space}_logits.safetensors"))[key]
    ours = load_file(str(run / "logits.safetensors"))
    assert torch.equal(ours["index"], torch.arange(len(preds["y_true"])))
    assert ours["labels"].tolist() == [int(y) for y in preds["y_true"]]
    assert (ours["logits"] - ref).abs().max() <= LOGIT_TOL
    assert ours["logits"].argmax(-1).tolist() == [int(y) for y in preds["y_pred"]]


def evaluate(run: Path, out: Path, shared, space: str) -> None:
    flags = [*shared["data"], "--subsample", space, "--precision", "fp32", "--save-logits"]
    assert main(["eval", "--run", str(run), *flags, "--out", str(out)]) == 0


def relative_diff(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours.float() - ref.float()).abs().max() / ref.float().abs().max())


# ------------------------------------------------------------------------------------------ CLIP-Adapter
@pytest.mark.parametrize("name", ["clip_adapter_dtd10_4shot_seed1", "clip_adapter_dtd10_4shot_seed1_det"])
def test_converted_clip_adapter_gives_the_reference_predictions(reference_dir, shared, tmp_path, name):
    run = tmp_path / "converted"
    flags = [*shared["data"], "--shots", "4", "--subsample", "base", *shared["backbone"]]
    assert main(["convert", str(reference_dir / name), *flags, "--out", str(run)]) == 0
    meta = json.loads((run / "weights.json").read_text())
    assert meta["method"] == "clip_adapter" and meta["converted_from"]["trainer"] == "CLIP_Adapter"
    assert meta["converted_from"]["settings_from_checkpoint"] == {"clip_adapter.reduction": 4}
    for space in ("base", "new"):
        evaluate(run, tmp_path / space, shared, space)
        assert_same_predictions(tmp_path / space, reference_dir / name, space)


def test_clip_adapter_parity_training_reproduces_the_reference(reference_dir, shared, tmp_path):
    folder, run = reference_dir / "clip_adapter_dtd10_4shot_seed1_det", tmp_path / "run"
    flags = [
        *["--method", "clip_adapter", *shared["data"], "--shots", "4", "--seed", "1", "--subsample", "base"],
        *shared["backbone"], *["--epochs", "2", "--batch-size", "4", "--lr", "0.002", "--precision", "fp32"],
        *["--init-from", str(folder / "init.safetensors"), "--save-logits", "--out", str(run)],
        *PARITY_MODE, "--set", "train.log_steps=true",
    ]  # fmt: skip
    assert main(["train", *flags]) == 0
    steps = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    reference = json.loads((folder / "losses.json").read_text())
    assert [(s["epoch"], s["batch"]) for s in steps] == [(r["epoch"] + 1, r["batch"] + 1) for r in reference]
    for ours, ref in zip(steps, reference):
        assert ours["lr"] == pytest.approx(ref["lr"], rel=1e-12)
        assert abs(ours["loss"] - ref["loss"]) <= 1e-4 * abs(ref["loss"])
    final = to_vlprompt("clip_adapter", load_file(str(folder / "final.safetensors"))).tensors
    ours = load_file(str(run / "weights.safetensors"))
    assert sorted(ours) == sorted(final) == ["learner.adapter.0.weight", "learner.adapter.2.weight"]
    for key, value in final.items():
        assert relative_diff(ours[key], value) <= TENSOR_TOL, key
    assert_same_predictions(run, folder, "base")
    evaluate(run, tmp_path / "new", shared, "new")
    assert_same_predictions(tmp_path / "new", folder, "new")


# ------------------------------------------------------------------------------------------ Tip-Adapter
TIP = "tip_adapter_dtd10_4shot_seed1"


def fit_flags(shared, out: Path, *extra: str):
    data = [*shared["data"], "--shots", "4", "--seed", "1", "--subsample", "base", *shared["backbone"]]
    return [
        "train",
        "--method",
        "tip_adapter",
        *data,
        "--precision",
        "fp32",
        "--save-logits",
        "--out",
        str(out),
        *extra,
    ]


def assert_same_grid(record, search, learner, val, tie=1e-3):
    """Every grid point's val accuracy is the reference's, except where float32 rounding can flip a prediction:
    at a differing point the difference is at most the share of val images whose two best logits (recomputed in
    float64) are within ``tie`` of each other — matmul rounding differs between CPUs (AVX2 / AVX-512)."""
    from vlprompt.methods.tip_adapter.model import CLIP_SCALE, cache_logits

    ours, ref = record["val_acc_grid_beta_major"], search["val_acc_grid_beta_major"]
    f = torch.nn.functional.normalize(val[0].double(), dim=-1)
    clip = CLIP_SCALE * f @ learner.classifier.double().t()
    affinity = f @ learner.cache_keys.double()
    alphas = record["alpha_list"]
    differing = [i for i, (a, b) in enumerate(zip(ours, ref)) if a != b]
    assert len(ours) == len(ref) and len(differing) <= len(ours) // 100, differing
    for i in differing:
        beta, alpha = record["beta_list"][i // len(alphas)], alphas[i % len(alphas)]
        logits = clip + alpha * cache_logits(affinity, learner.cache_values.double(), beta)
        top2 = logits.topk(2, dim=1).values
        ties = int(((top2[:, 0] - top2[:, 1]) < tie).sum())
        assert ties and abs(ours[i] - ref[i]) <= 100.0 * ties / len(logits) + 1e-9, (i, ours[i], ref[i], ties)


def test_tip_adapter_search_on_the_reference_tensors_is_the_reference_search(reference_dir, tmp_path):
    """The reference's own cache, classifier and val features through our search: every grid point's val accuracy,
    the chosen β/α and the test logits are the reference's."""
    from vlprompt import create_task
    from vlprompt.backbones import load_backbone
    from vlprompt.engine.fitting import FitData
    from vlprompt.task import LabelSpace

    folder = reference_dir / TIP
    cache = load_file(str(folder / "cache.safetensors"))
    models = reference_dir / "models"
    backbone = load_backbone(str(models / "tiny-openai.json"), str(models / "tiny-openai.safetensors"), device="cpu")
    space = LabelSpace(["banded", "blotchy", "braided", "bubbly", "bumpy"], template="{} texture.")
    learner = create_task("tip_adapter", backbone, space).learner
    learner.register_buffer("classifier", cache["clip_weights"].t().contiguous(), persistent=False)
    learner.register_buffer("cache_keys", cache["cache_keys"])
    learner.register_buffer("cache_values", cache["cache_values"])
    split = {"val": (cache["val_features"], cache["val_labels"].long())}
    data = FitData(train_view=None, split=split.__getitem__, num_classes=5, log=lambda line: None)
    record = learner.search(data)
    search = json.loads((folder / "search.json").read_text())
    assert record["beta_list"] == search["beta_list"] and record["alpha_list"] == search["alpha_list"]
    assert_same_grid(record, search, learner, split["val"])
    assert (record["beta"], record["alpha"]) == (search["best_beta"], search["best_alpha"])
    assert (record["val_acc_zero_shot"], record["val_acc_init"]) == (
        search["val_acc_zero_shot"],
        search["val_acc_init"],
    )
    ref = load_file(str(folder / "preds_base_logits.safetensors"))
    ours = learner.logits(cache["test_features"], learner.classifier)
    assert (ours - ref["logits"]).abs().max() <= LOGIT_TOL


def test_tip_adapter_fit_reproduces_the_deterministic_reference(reference_dir, shared, tmp_path):
    """Fitted from the same few-shot items (the deterministic cache views): the cache, the searched β/α, every
    grid point's val accuracy on the whole base val split and the per-image logits are the reference's."""
    folder, run = reference_dir / f"{TIP}_det", tmp_path / "run"
    assert main(fit_flags(shared, run, "--set", "data.train_transform=resize")) == 0
    cache = load_file(str(folder / "cache.safetensors"))
    ours = load_file(str(run / "weights.safetensors"))
    assert relative_diff(ours["learner.cache_keys"], cache["cache_keys"]) <= TENSOR_TOL
    assert torch.equal(ours["learner.cache_values"], cache["cache_values"])
    fit, search = json.loads((run / "fit.json").read_text())["fit"], json.loads((folder / "search.json").read_text())
    assert fit["val_acc_grid_beta_major"] == search["val_acc_grid_beta_major"]
    assert (fit["beta"], fit["alpha"]) == (search["best_beta"], search["best_alpha"])
    assert float(ours["learner.beta"]) == pytest.approx(search["best_beta"])
    assert_same_predictions(run, folder, "base")
    evaluate(run, tmp_path / "new", shared, "new")  # the cache holds base classes: zero-shot CLIP on new ones
    assert_same_predictions(tmp_path / "new", folder, "new")


def test_converted_tip_adapter_cache_searched_gives_the_reference_result(reference_dir, shared, tmp_path):
    """The random-view reference cache, saved as its build_cache_model does, converted (--from tip-adapter) and
    searched (--init-from): the reference's β/α and per-image logits. Our val features differ from the reference's
    by float rounding, which moves at most 2 of the 4000 grid points by one image (ties)."""
    folder, cache_dir = reference_dir / TIP, tmp_path / "caches"
    cache_dir.mkdir()
    cache = load_file(str(folder / "cache.safetensors"))
    torch.save(cache["cache_keys"], cache_dir / "keys_4shots.pt")
    torch.save(cache["cache_values"].half(), cache_dir / "values_4shots.pt")
    flags = [*shared["data"], "--shots", "4", "--subsample", "base", *shared["backbone"]]
    converted = tmp_path / "converted"
    assert main(["convert", "--from", "tip-adapter", str(cache_dir), *flags, "--out", str(converted)]) == 0
    assert main(fit_flags(shared, tmp_path / "run", "--init-from", str(converted))) == 0
    fit, search = (
        json.loads((tmp_path / "run" / "fit.json").read_text())["fit"],
        json.loads((folder / "search.json").read_text()),
    )
    assert fit["cache_from_init"] and (fit["beta"], fit["alpha"]) == (search["best_beta"], search["best_alpha"])
    differ = sum(a != b for a, b in zip(fit["val_acc_grid_beta_major"], search["val_acc_grid_beta_major"]))
    assert differ <= 2
    assert_same_predictions(tmp_path / "run", folder, "base")
