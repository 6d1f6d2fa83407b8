"""CUDA-only checks (marker ``gpu``; skipped without a CUDA device): the bf16 autocast training step that
``--precision auto`` uses on CUDA, and two-process training with NCCL."""

import json

import pytest
import torch
from safetensors.torch import load_file

from vlprompt import create_task
from vlprompt.engine.precision import autocast_context
from vlprompt.task import LabelSpace, StepInfo

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SPACE = LabelSpace(["red circle", "blue star", "green moon"], kgcoop_template="a photo of a {}.")


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


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_gpus_with_nccl_equal_one(tmp_path, cli_env, tiny_folder):
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
    cmd = [sys.executable, "-m", "vlprompt", *args, "--out", str(tmp_path / "two"), "--nproc", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (load_file(str(tmp_path / d / "weights.safetensors")) for d in ("one", "two"))
    assert all((a[k] - b[k]).abs().max() <= 1e-4 for k in a)  # GPU kernels differ with the batch split
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert results["num_images"] == 16
