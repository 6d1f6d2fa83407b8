"""Shared fixtures: tiny random open_clip models (no download), image folders, a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import example_addon  # noqa: F401  (registers the example add-on of CONTRIBUTING.md: the matrix must pick it up)
import example_fitted  # noqa: F401  (registers the stand-in fitted learner of vlprompt.engine.fitting)
import example_learner.config  # noqa: F401  (declares the example learner package of CONTRIBUTING.md, likewise)
from cli_runs import train_argv
from tiny_models import TINY_RN, TINY_VIT, save_tiny

# tests never touch the network: a tag lookup must fail immediately instead of trying the hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tiny_vit_files(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny_vit"), TINY_VIT, "tiny_vit")


@pytest.fixture(scope="session")
def tiny_rn_files(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny_rn"), TINY_RN, "tiny_rn")


@pytest.fixture(scope="session")
def tiny_vit(tiny_vit_files):
    from vlprompt.backbones import load_backbone

    cfg, weights = tiny_vit_files
    return load_backbone(str(cfg), str(weights), device="cpu")


@pytest.fixture(scope="session")
def tiny_rn(tiny_rn_files):
    from vlprompt.backbones import load_backbone

    cfg, weights = tiny_rn_files
    return load_backbone(str(cfg), str(weights), device="cpu")


CLASSES = ["red_circle", "green_square", "blue_star", "yellow_moon"]


def make_image_folder(root: Path, per_split=(("train", 6), ("val", 2), ("test", 4)), classes=CLASSES, size=40):
    """A tiny ImageFolder tree ``root/{train,val,test}/<class>/*.png`` whose classes differ in colour."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in per_split:
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                arr[..., c % 3] += 150
                Image.fromarray(arr).save(folder / f"{name}_{i}.png")
    return root


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("folder"))


@pytest.fixture
def cli_env(tmp_path, monkeypatch, tiny_vit_files):
    """Run CLI commands with a private feature cache; returns backbone flags for the tiny ViT."""
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    cfg, weights = tiny_vit_files
    return ["--backbone", str(cfg), "--pretrained", str(weights)]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_vit_files, tiny_folder):
    """A finished one-epoch CoOp run on ``tiny_folder`` (``cli_runs.train_argv`` with the tiny ViT); read-only:
    copy it to change it."""
    from vlprompt.cli import main

    root = tmp_path_factory.mktemp("trained")
    cfg, weights = tiny_vit_files
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLPROMPT_CACHE", str(root / "cache"))
        assert main(train_argv(root / "run", tiny_folder, ["--backbone", str(cfg), "--pretrained", str(weights)])) == 0
    return root / "run"
