"""Per-layer feature shift of a trained run (RESTORE's Ω, Yang et al., ECCV 2024, Eq. 6): ``vlprompt analyze
feature-shift``.

For every block l of both towers, ‖Ω_l‖ = the mean over sequences of ‖G_{l+1} − Φ_l(G_l)‖_F (non-prompt
outputs of the block run with its prompts minus the frozen block on the non-prompt inputs alone; see
:mod:`vlprompt.addons.restore.model` for the per-token normalisation, ``--norm``). Vision: over the test
images; text: over the class prompts of the label space (once per image for image-conditioned text).
Blocks whose input carries no prompts report 0 (e.g. every vision block of a CoOp run), and a CNN image
tower reports nothing (null). Works for any trained run; the measurement runs the learner's encoders
with a block hook, so add-ons (DePT's head, RESTORE's surgery) play no part.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional

import torch

from vlprompt import fileio
from vlprompt.addons.restore.paper_formulation import block_shift, sequence_norms
from vlprompt.capabilities import Capability

log = logging.getLogger("vlprompt")


class ShiftMeter:
    """Running per-layer sums of per-sequence ‖Ω_l‖ for one tower."""

    def __init__(self, layers: int):
        self.sums = [0.0] * layers
        self.counts = [0] * layers

    def add(self, layer: int, norms: torch.Tensor) -> None:
        self.sums[layer] += float(norms.sum())
        self.counts[layer] += norms.numel()

    def means(self) -> List[float]:
        return [s / c if c else 0.0 for s, c in zip(self.sums, self.counts)]


@torch.no_grad()
def measure_shifts(learner, batches, per_token: bool = True) -> Dict[str, Optional[List[float]]]:
    """{"vision": [‖Ω_l^v‖ per block] (None for a CNN tower), "text": [‖Ω_l^t‖ per block]} over image
    ``batches`` (an iterable of image tensors)."""
    bb = learner.backbone
    meters = {"text": ShiftMeter(bb.text_layers)}
    vision_taps = Capability.LAYER_TAPS in bb.capabilities("vision")
    if vision_taps:
        meters["vision"] = ShiftMeter(bb.vision_layers)
    input_prompts = {"text": learner.input_text_prompts(), "vision": 0}

    def hook(tower, layer, block, x_in, x_out, n_prompts):
        n = n_prompts or input_prompts[tower]
        if n > 0:
            meters[tower].add(layer, sequence_norms(block_shift(bb, tower, block, x_in, x_out, n), per_token))

    shared_text = Capability.PER_INSTANCE_TEXT not in learner.provides
    text_done = False
    for images in batches:
        features = learner.image_features(images.to(bb.device), hook=hook if vision_taps else None)
        if not (shared_text and text_done):
            learner.text_features(image_features=features, hook=hook)
            text_done = True
    return {"vision": meters["vision"].means() if "vision" in meters else None, "text": meters["text"].means()}


def format_table(shifts: Dict[str, Optional[List[float]]]) -> str:
    vision, text = shifts["vision"], shifts["text"]
    layers = max(len(text), len(vision or []))

    def cell(values, i):
        return f"{values[i]:>12.4f}" if values is not None and i < len(values) else f"{'-':>12}"

    lines = [f"{'layer':<7}{'vision':>12}{'text':>12}"]
    lines += [f"{i:<7}{cell(vision, i)}{cell(text, i)}" for i in range(layers)]
    lines.append(f"{'sum':<7}{cell([sum(vision)] if vision is not None else None, 0)}{cell([sum(text)], 0)}")
    return "\n".join(lines)


def _is_result(data) -> bool:
    return isinstance(data, dict) and {"source_run", "vision", "text"} <= set(data)


def feature_shift(
    source,
    data,
    *,
    label_space: str = "auto",
    norm: str = "token",
    max_images: int = 0,
    out=None,
    quiet: bool = False,
    **backbone_options,
) -> Dict:
    """``vlprompt analyze feature-shift``: per-layer ‖Ω_l‖ of trained run ``source`` on ``data``'s test images
    (a table on stdout; JSON to ``out`` when given)."""
    from vlprompt.data.transforms import backbone_transform
    from vlprompt.engine import features as fc
    from vlprompt.engine.precision import autocast_context
    from vlprompt.pipeline.evaluation import open_on_data

    if out:
        fileio.check_output_file(Path(out), "--out", "feature-shift result", fileio.json_where(_is_result))
    trained, dataset, space, task = open_on_data(source, data, label_space, **backbone_options)
    backbone, train_cfg = trained.backbone, trained.config.train
    items = list(dataset.test)[:max_images] if max_images else list(dataset.test)
    transform = backbone_transform(backbone)
    loader = fc.image_loader(items, transform, train_cfg.test_batch_size, data.num_workers, data.skip_corrupt)
    batches = (batch[0] for batch in loader if batch is not None)
    with autocast_context(train_cfg.precision, backbone.device):
        shifts = measure_shifts(task.learner, batches, per_token=norm == "token")
    result = {
        "source_run": str(source),
        "method": trained.config.method,
        "dataset": data.dataset,
        "label_space": "seen" if space.seen else "unseen",
        "num_images": len(items),
        "max_images": max_images,
        "num_classes": len(space),
        "norm": norm,
        "vision": shifts["vision"],
        "text": shifts["text"],
        "vision_sum": None if shifts["vision"] is None else sum(shifts["vision"]),
        "text_sum": sum(shifts["text"]),
    }
    table = format_table(shifts)
    log.info("feature shift of %s on %s (%d images):\n%s", result["method"], data.dataset, len(items), table)
    if out:
        fileio.write_json(Path(out), result)
    if not quiet:
        print(
            f"feature shift ‖Ω_l‖ ({norm} norm) of {result['method']} on {data.dataset}, "
            f"{len(items)} images, {len(space)} classes"
        )
        print(table)
        if out:
            print(f"-> {out}")
    return result
