"""CUDA-only checks (marker ``gpu``; skipped without a CUDA device; run by ``benchmarks/gpu_suite.sh``): the bf16
autocast training step that ``--precision auto`` uses on CUDA; every method trains two steps and evaluates under
``--precision auto`` and ``fp16``; the feature cache and a trained run's predictions equal the CPU's within
tolerance; training with NCCL on every visible GPU equals one process."""

import json

import pytest
import torch
from safetensors.torch import load_file

import vlprompt
from vlprompt import create_task
from vlprompt.engine.precision import autocast_context
from vlprompt.registry import LEARNERS
from vlprompt.task import LabelSpace, StepInfo

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SPACE = LabelSpace(["red circle", "blue star", "green moon"], kgcoop_template="a photo of a {}.")
#: every registered learner with trainable tensors and the add-on compositions of the paper methods
METHODS = [
    *(n for n in LEARNERS.names() if n != "zeroshot"),
    *("kgcoop", "promptsrc", "coop+dept", "coop+nemesis", "maple+restore", "ivlp+dept"),
]


@pytest.fixture(scope="module")
def cuda_vit(tiny_vit_files):
    from vlprompt.backbones import load_backbone

    cfg, weights = tiny_vit_files
    return load_backbone(str(cfg), str(weights), device="cuda")


@pytest.mark.parametrize("method", ["coop", "maple+dept"])
def test_bf16_autocast_step_trains_fp32_prompts(cuda_vit, method):
    torch.manual_seed(0)
    task = create_task(method, cuda_vit, SPACE)
    images, labels = torch.randn(3, 3, 32, 32, device="cuda"), torch.tensor([0, 1, 2], device="cuda")
    device = torch.device("cuda")
    with autocast_context("bf16", device):
        result = task.training_step(images, labels, StepInfo(num_epochs=2), features=False)
    assert torch.isfinite(result.loss)
    result.loss.backward()
    trained = [p for p in task.parameters() if p.requires_grad]
    assert trained and all(p.dtype == torch.float32 and p.grad is not None for p in trained)
    with torch.no_grad(), autocast_context("fp32", device):
        exact = task.training_step(images, labels, StepInfo(num_epochs=2), features=False).logits
    assert torch.allclose(result.logits.float(), exact, rtol=0.05, atol=0.5)  # bf16: ~3 significant digits


@pytest.mark.parametrize("precision", ["auto", "fp16"])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_two_steps_and_evaluates(tmp_path, cli_env, tiny_folder, method, precision):
    from vlprompt.cli import main

    args = [
        "train", "--method", method, "--dataset", "folder", "--data-root", str(tiny_folder), "--epochs", "1",
        "--batch-size", "12", "--device", "cuda", "--precision", precision, "--set", "train.log_steps=true",
        *cli_env, "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(args) == 0
    steps = [json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    assert len(steps) == 2 and all(torch.isfinite(torch.tensor(s["loss"])) for s in steps)  # 24 images / 12
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["num_images"] == 16 and 0.0 <= results["accuracy"] <= 100.0


def test_feature_cache_and_predictions_equal_the_cpu(tmp_path, cli_env, tiny_folder, tiny_vit, cuda_vit):
    from vlprompt.cli import main
    from vlprompt.data import build_dataset
    from vlprompt.data.transforms import backbone_transform
    from vlprompt.engine.features import FeatureCache, image_loader

    items = build_dataset("folder", tiny_folder).test
    feats = {}
    for name, backbone in (("cpu", tiny_vit), ("cuda", cuda_vit)):
        cache = FeatureCache(backbone, root=tmp_path / f"cache-{name}")
        transform = backbone_transform(backbone, "test")
        loader = lambda t=transform: image_loader(items, t, batch_size=8)
        feats[name] = cache.test_features(items, loader, skip_corrupt=False)["features"]
    scale = feats["cpu"].abs().max()
    assert (feats["cuda"] - feats["cpu"]).abs().max() <= 1e-3 * scale  # TF32 convolutions on CUDA
    args = [
        "train", "--method", "maple", "--dataset", "folder", "--data-root", str(tiny_folder), "--epochs", "1",
        "--device", "cpu", "--precision", "fp32", *cli_env, "--save-logits", "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    assert main(args) == 0
    vlprompt.evaluate(tmp_path / "run", device="cuda", precision="fp32", out=tmp_path / "eval", save_logits=True,
                      quiet=True)  # fmt: skip
    cpu, gpu = (load_file(str(tmp_path / d / "logits.safetensors"))["logits"] for d in ("run", "eval"))
    assert (cpu - gpu).abs().max() <= 1e-2 * cpu.abs().max()
    same = cpu.argmax(-1) == gpu.argmax(-1)
    top2 = cpu.topk(2, dim=-1).values
    assert bool((same | ((top2[:, 0] - top2[:, 1]) <= 1e-2 * cpu.abs().max())).all())  # only near-ties may flip


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_every_visible_gpu_with_nccl_equals_one(tmp_path, cli_env, tiny_folder):
    import os
    import subprocess
    import sys

    from vlprompt.cli import main

    args = [
        "train", "--method", "coop", "--dataset", "folder", "--data-root", str(tiny_folder), "--epochs", "2",
        "--batch-size", "8", "--lr", "0.01", "--set", "train.warmup_epochs=0", "--set", "coop.n_ctx=4",
        "--device", "cuda", "--precision", "fp32", *cli_env,
    ]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "VLPROMPT_CACHE": str(tmp_path / "cache2")}
    cmd = [
        sys.executable,
        "-m",
        "vlprompt",
        *args,
        "--out",
        str(tmp_path / "two"),
        "--nproc",
        str(torch.cuda.device_count()),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (load_file(str(tmp_path / d / "weights.safetensors")) for d in ("one", "two"))
    assert all((a[k] - b[k]).abs().max() <= 1e-4 for k in a)  # GPU kernels differ with the batch split
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert results["num_images"] == 16
