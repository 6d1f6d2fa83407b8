"""Backbone families (issue 20): one MaPLe training step vs open_clip's own forward + backward of the same model.

For each family, a ViT-B-sized model with random weights built here (no download):

* ``eva02``: open_clip's ``EVA02-B-16`` (timm EVA tower with rotary position embeddings), ``--pretrained none``;
* ``siglip``: open_clip's ``ViT-B-16-SigLIP`` (timm tower with the attention-pool head, bidirectional text tower,
  logit bias), with a word-level tokenizer made locally in place of the hub's (speed does not depend on it);
* ``hf-clip``: a Hugging Face ``transformers`` ``CLIPModel`` folder with ``openai/clip-vit-base-patch16``'s
  architecture (QuickGELU), random weights, written with ``save_pretrained`` and read by ``--pretrained DIR``.

Side by side, interleaved, median of ``--repeats`` after a warm-up, batch 4, 5 classes, fp32:

* *MaPLe step*: ``task.training_step`` (2 context tokens, depth 9) + backward;
* *open_clip fwd+bwd*: the model's own ``encode_image`` / ``encode_text`` on the 5 class prompts at the model's context length, CE of the
  logits, backward to the pixels and the token embedding (so that gradients pass every block of both towers, as
  in MaPLe).

Usage::

    python benchmarks/bench_families.py                 # ViT-B size (a few minutes on 2 cores)
    python benchmarks/bench_families.py --quick         # tiny models: checks that it runs
    python benchmarks/bench_families.py --device cuda

Prints a markdown table ready for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny towers, local SigLIP-style tokenizer

import benchlib

CLASSES = ["banded", "blotchy", "braided", "bubbly", "bumpy"]
FAMILIES = ("eva02", "siglip", "hf-clip")


def build(family: str, folder: Path, quick: bool, device: str):
    """The family's backbone (vlprompt) with random weights."""
    from vlprompt.backbones import load_backbone

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if family == "hf-clip":
        return load_backbone(str(save_hf_clip(folder / "hf-clip", quick)), device=device)
    import tiny_towers  # registers the tiny timm towers for --quick

    if family == "eva02":
        if quick:
            (folder / "eva.json").write_text(json.dumps(tiny_towers.TINY_EVA02))
            return load_backbone(str(folder / "eva.json"), "none", device=device)
        return load_backbone("EVA02-B-16", "none", device=device)
    words = [w for name in CLASSES for w in name.split()] + ["a", "photo", "of"]
    vocab = tiny_towers.save_siglip_tokenizer(folder / "tokenizer", words)
    if quick:
        config = tiny_towers.tiny_siglip_config(folder / "tokenizer", vocab, context_length=32)
    else:
        import open_clip

        config = json.loads(json.dumps(open_clip.get_model_config("ViT-B-16-SigLIP")))
        config["text_cfg"]["hf_tokenizer_name"] = str(folder / "tokenizer")
    (folder / "siglip.json").write_text(json.dumps(config))
    return load_backbone(str(folder / "siglip.json"), "none", device=device)


def save_hf_clip(directory: Path, quick: bool) -> Path:
    import transformers

    if quick:
        text = {"hidden_size": 32, "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 2}
        vision = {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 3,
                  "image_size": 32, "patch_size": 8}  # fmt: skip
        projection = 16
    else:  # openai/clip-vit-base-patch16
        text = {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8}
        vision = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "image_size": 224, "patch_size": 16}  # fmt: skip
        projection = 512
    config = transformers.CLIPConfig(
        text_config=transformers.CLIPTextConfig(hidden_act="quick_gelu", **text).to_dict(),
        vision_config=transformers.CLIPVisionConfig(hidden_act="quick_gelu", **vision).to_dict(),
        projection_dim=projection,
    )
    transformers.CLIPModel(config).save_pretrained(str(directory))
    return directory


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(backbone, args) -> tuple:
    from vlprompt import create_task
    from vlprompt.task import LabelSpace, StepInfo

    space = LabelSpace(CLASSES)
    task = create_task("maple", backbone, space)
    size, device = backbone.image_size, args.device
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, size, size, generator=g).to(device)
    labels = torch.tensor([0, 1, 2, 3], device=device)
    clip = backbone.clip
    ids = backbone.tokenize([f"a photo of a {c}." for c in CLASSES]).to(device)
    embedding = next(m for m in clip.modules() if isinstance(m, torch.nn.Embedding))

    def maple_step():
        result = task.training_step(images, labels, StepInfo(num_epochs=2), features=False)
        result.loss.backward()
        task.zero_grad(set_to_none=True)

    def open_clip_step():
        pixels = images.clone().requires_grad_(True)
        embedding.weight.requires_grad_(True)
        try:
            image, text = clip.encode_image(pixels, normalize=True), clip.encode_text(ids, normalize=True)
            logits = clip.logit_scale.exp() * image @ text.t()
            if getattr(clip, "logit_bias", None) is not None:
                logits = logits + clip.logit_bias
            F.cross_entropy(logits, labels).backward()
        finally:
            embedding.weight.requires_grad_(False)
            embedding.weight.grad = None

    def timed(fn) -> float:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - start

    maple_step(), open_clip_step()  # warm-up
    ours, theirs = [], []
    for _ in range(args.repeats):
        ours.append(timed(maple_step))
        theirs.append(timed(open_clip_step))
    return statistics.median(ours), statistics.median(theirs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models (a smoke test, not a measurement)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--repeats", type=int, default=3)
    benchlib.threads_option(parser)
    args = parser.parse_args(argv)
    benchlib.apply_threads(args)
    benchlib.quiet_logs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            backbone = build(family, Path(tmp) / family, args.quick, args.device)
            rows.append((family, *measure(backbone, args)))
            del backbone
    size = "tiny models (--quick)" if args.quick else "ViT-B size, random weights"
    print(f"\n#### MaPLe step vs open_clip's own forward + backward, per backbone family ({args.device})\n")
    print(f"Machine: {benchlib.machine()}")
    print(f"Setting: {size}; batch 4, 5 classes, fp32; median of {args.repeats} after a warm-up, interleaved\n")
    print("| family | MaPLe step | open_clip fwd+bwd | MaPLe / open_clip |")
    print("|---|---:|---:|---:|")
    for family, ours, theirs in rows:
        print(f"| {family} | {ours:.3f} s | {theirs:.3f} s | {ours / theirs:.2f}x |")


if __name__ == "__main__":
    main()
