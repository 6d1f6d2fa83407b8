"""Fixtures of the parity tests: the reference trainers' outputs in ``../shared/reference`` (read-only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: the reference runs' DTD10 split (10 classes of the published DTD split)
SPLIT = "dtd10/split_zhou_DescribableTextures_10classes.json"
SHARED_REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The shared reference outputs, or skip when they are not there."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"shared reference outputs not available: {SHARED_REFERENCE}")
    return SHARED_REFERENCE


@pytest.fixture(scope="module")
def shared(reference_dir, tmp_path_factory):
    """Backbone and data flags of the reference runs; the split file is copied so that the few-shot cache is
    written next to the copy, never into ../shared."""
    images = reference_dir.parent / "data" / "dtd10" / "images"
    if not images.is_dir():
        pytest.skip(f"shared DTD images not available: {images}")
    root = tmp_path_factory.mktemp("dtd10")
    split = Path(shutil.copy(reference_dir / SPLIT, root / Path(SPLIT).name))
    models = reference_dir / "models"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLPROMPT_CACHE", str(root / "cache"))  # one test-feature cache for the module
        yield {
            "backbone": [
                "--backbone",
                str(models / "tiny-openai.json"),
                "--pretrained",
                str(models / "tiny-openai.safetensors"),
            ],
            "data": ["--dataset", "split", "--split-file", str(split), "--data-root", str(images)],
        }
