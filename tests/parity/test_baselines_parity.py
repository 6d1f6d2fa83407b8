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
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vlprompt.cli import main
from vlprompt.convert import to_vlprompt

LOGIT_TOL = 1e-4
TENSOR_TOL = 1e-4
SPLIT = "dtd10/split_zhou_DescribableTextures_10classes.json"
PARITY_MODE = ["--set", "data.train_order=sequential", "--set", "data.train_transform=resize"]


@pytest.fixture(scope="module")
def shared(reference_dir, tmp_path_factory):
    """Backbone and data flags of the reference runs (DTD's template "{} texture."); the split file is copied so
    that the few-shot cache is written next to the copy, never into ../shared."""
    images = reference_dir.parent / "data" / "dtd10" / "images"
    if not images.is_dir():
        pytest.skip(f"shared DTD images not available: {images}")
    root = tmp_path_factory.mktemp("dtd10")
    split = Path(shutil.copy(reference_dir / SPLIT, root / Path(SPLIT).name))
    models = reference_dir / "models"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLPROMPT_CACHE", str(root / "cache"))
        yield {
            "backbone": ["--backbone", str(models / "tiny-openai.json"), "--pretrained", str(models / "tiny-openai.safetensors")],
            "data": ["--dataset", "split", "--split-file", str(split), "--data-root", str(images), "--template", "{} texture."],
        }  # fmt: skip


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
