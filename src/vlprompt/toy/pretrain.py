"""Pretrain the toy CLIP contrastively on captioned ``clean`` scenes of the toy world.

    vlprompt toy-pretrain --out DIR [--steps N] [--batch-size B] [--pool P] [--seed S]
    python -m vlprompt.toy.pretrain --out DIR ...   (the same)

Recipe
------
* **Data**: a pool of ``--pool`` ``clean`` scenes (:mod:`vlprompt.toy.world`) rendered once at the
  model's image size. Every step draws ``--batch-size`` scenes from the pool and captions them afresh
  (:func:`vlprompt.toy.world.caption` picks a new sentence frame and attribute subset each time).
* **Augmentation**: a random resized crop (area 65-100%, bicubic, as CLIP's training transform but
  milder, so the object stays in view) and a horizontal flip (no caption mentions left or right),
  then CLIP's mean/std normalisation — the same normalisation the downstream pipeline uses.
* **Model**: :data:`TOY_ARCHITECTURE`, an open_clip ``CLIP`` with a 4-layer ViT (32 px, patch 4) and a
  4-layer text transformer on the standard 49408-token BPE vocabulary and 77-token context.
* **Objective**: CLIP's symmetric InfoNCE over the batch with a learnable temperature (initialised at
  1/0.07, ``logit_scale`` clamped to ``ln 100`` after every step).
* **Optimiser**: AdamW (betas 0.9/0.98, eps 1e-6, weight decay 0.1 on matrices only), linear warm-up
  over the first 5% of steps, then cosine decay to zero.

Captions are shorter than 77 tokens and the text transformer is causal, so encoding only the first
``max caption length`` positions gives exactly the features of the full 77-token input (the EOT
token's position is unchanged) at a fraction of the cost; :func:`encode_text_prefix` does that.

Determinism: all randomness comes from ``--seed`` (numpy generators for data, ``torch.manual_seed``
for the initialisation) and the torch thread count is fixed (``--threads``), so the same command gives
the same weights on the same machine. The script writes ``toy_clip.safetensors`` (fp16) and
``toy_clip.json`` (open_clip config, provenance and, unless ``--no-report``, the headroom report of
:func:`vlprompt.toy.headroom.toy_headroom_report`) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vlprompt.data.transforms import CLIP_MEAN, CLIP_STD
from vlprompt.toy import WORLD_VERSION
from vlprompt.toy.model import load_toy_clip, save_toy_clip
from vlprompt.toy.pretrain_args import DESCRIPTION, add_arguments
from vlprompt.toy.world import Scene, caption, render, sample_scene

TOY_ARCHITECTURE = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 4, "width": 64, "patch_size": 4, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 4},
}
CROP_AREA = (0.65, 1.0)
MAX_LOGIT_SCALE = math.log(100.0)


def render_pool(n: int, size: int, seed: int) -> Tuple[torch.Tensor, List[Scene]]:
    """``n`` clean scenes and their renderings as a uint8 tensor ``[n, 3, size, size]``."""
    rng = np.random.default_rng([seed, 0])
    scenes = [sample_scene(rng, "clean") for _ in range(n)]
    pixels = np.stack([np.asarray(render(s, size)) for s in tqdm(scenes, desc="rendering scenes", unit="img")])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), scenes


def augment(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random resized crop + horizontal flip of a uint8 batch, then CLIP normalisation (float32)."""
    n = images.shape[0]
    scale = np.sqrt(rng.uniform(*CROP_AREA, n))
    shift = rng.uniform(-1, 1, (n, 2)) * (1 - scale)[:, None]
    flip = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    theta = np.zeros((n, 2, 3), dtype=np.float32)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale * flip, scale, shift
    x = images.float() / 255
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bicubic", padding_mode="border", align_corners=False).clamp(0, 1)
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def encode_text_prefix(model: open_clip.model.CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text(tokens)`` computed on the first ``L`` positions only (``L`` >= EOT position + 1).

    Exact for a causal text transformer: positions after the EOT token never influence it.
    """
    length = tokens.shape[1]
    x = model.token_embedding(tokens) + model.positional_embedding[:length]
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
    return model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection


def _optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def _lr_factor(step: int, steps: int) -> float:
    warmup = max(1, round(0.05 * steps))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def pretrain(
    out: Path,
    steps: int,
    batch_size: int,
    pool: int,
    lr: float,
    weight_decay: float,
    seed: int,
    threads: int,
    report: bool,
    data_root: Optional[Path] = None,
) -> dict:
    """Run the recipe, write ``toy_clip.safetensors`` + ``toy_clip.json`` into ``out``; return the json."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    start = time.time()
    images, scenes = render_pool(pool, TOY_ARCHITECTURE["vision_cfg"]["image_size"], seed)
    model = open_clip.model.CLIP(**TOY_ARCHITECTURE).train()
    opt = _optimizer(model, lr, weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps))
    labels = torch.arange(batch_size)
    losses = []
    bar = tqdm(range(steps), desc="pretraining", unit="step")
    for step in bar:
        rng = np.random.default_rng([seed, 1, step])
        idx = rng.choice(pool, batch_size, replace=False)
        tokens = open_clip.tokenize([caption(scenes[i], rng) for i in idx])
        tokens = tokens[:, : int(tokens.argmax(dim=-1).max()) + 1]
        img = F.normalize(model.encode_image(augment(images[idx], rng)), dim=-1)
        txt = F.normalize(encode_text_prefix(model, tokens), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.T
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{model.logit_scale.exp().item():.1f}")
    train_seconds = time.time() - start

    out.mkdir(parents=True, exist_ok=True)
    weights = out / "toy_clip.safetensors"
    save_toy_clip(model, weights)
    meta = {
        "open_clip_config": TOY_ARCHITECTURE,
        "provenance": {
            "script": "python -m vlprompt.toy.pretrain",
            "seed": seed,
            "steps": steps,
            "batch_size": batch_size,
            "pool": pool,
            "lr": lr,
            "weight_decay": weight_decay,
            "threads": threads,
            "world_version": WORLD_VERSION,
            "final_loss": round(losses[-1], 4),
            "final_loss_mean_last_50": round(float(np.mean(losses[-50:])), 4),
            "logit_scale": round(model.logit_scale.exp().item(), 3),
            "train_seconds": round(train_seconds, 1),
            "torch": torch.__version__,
            "open_clip": open_clip.__version__,
            "python": platform.python_version(),
            "weights_dtype": "float16",
        },
    }
    config_path = weights.with_suffix(".json")
    config_path.write_text(json.dumps(meta, indent=2) + "\n")
    if report:
        from vlprompt.toy.headroom import toy_headroom_report

        meta["headroom"] = toy_headroom_report(load_toy_clip(weights), data_root)
        config_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def run(args) -> dict:
    """Run the recipe with the parsed arguments of :func:`vlprompt.toy.pretrain_args.add_arguments`; print and
    return the provenance (and headroom report)."""
    meta = pretrain(
        args.out,
        args.steps,
        args.batch_size,
        args.pool,
        args.lr,
        args.weight_decay,
        args.seed,
        args.threads,
        report=not args.no_report,
        data_root=args.data_root,
    )
    print(json.dumps({k: meta[k] for k in ("provenance", "headroom") if k in meta}, indent=2))
    return meta


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m vlprompt.toy.pretrain`` (the same arguments as ``vlprompt toy-pretrain``)."""
    p = argparse.ArgumentParser(prog="python -m vlprompt.toy.pretrain", description=DESCRIPTION)
    add_arguments(p)
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
