"""The offline toy world: deterministic generation, registered datasets, shipped weights, headroom."""

from __future__ import annotations

import json
import re

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from vlprompt.toy import datasets as toy_data
from vlprompt.toy.headroom import toy_headroom_report
from vlprompt.toy.model import TOY_CONFIG_PATH, TOY_WEIGHTS_PATH, load_toy_clip, toy_model_config
from vlprompt.toy.pretrain import TOY_ARCHITECTURE, encode_text_prefix
from vlprompt.toy.pretrain import main as pretrain_main
from vlprompt.toy.world import COLOURS, SHAPES, STYLES, caption, render, sample_scene

NAMES = ("toy-b2n", "toy-shift", "toy-xd")


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    """All three toy datasets, generated once into a temporary data root."""
    root = tmp_path_factory.mktemp("toy_data")
    return root, {name: toy_data.read_toy_dataset(name, root) for name in NAMES}


@pytest.fixture(scope="module")
def toy_clip():
    return load_toy_clip()


@pytest.mark.parametrize("style", STYLES)
def test_scenes_images_and_captions_are_deterministic(style):
    def draw(seed):
        rng = np.random.default_rng(seed)
        scene = sample_scene(rng, style)
        return scene, np.asarray(render(scene, 32)), [caption(scene, rng) for _ in range(5)]

    (s1, px1, c1), (s2, px2, c2), (s3, px3, _) = draw(7), draw(7), draw(8)
    assert s1 == s2 and c1 == c2 and np.array_equal(px1, px2)
    assert px1.shape == (32, 32, 3) and px1.dtype == np.uint8
    assert s1 != s3 and not np.array_equal(px1, px3)


def test_downstream_words_occur_in_pretraining_captions():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(3000):
        seen.update(re.findall(r"[a-z]+", caption(sample_scene(rng, "clean"), rng)))
    for spec in toy_data.SPECS.values():
        for text in spec.classnames + [spec.template]:
            assert set(re.findall(r"[a-z]+", text)) <= seen, text
    tokens = open_clip.tokenize([spec.template.format(c) for spec in toy_data.SPECS.values() for c in spec.classnames])
    assert tokens.shape[1] == 77 and int(tokens.max()) < 49408


def test_datasets_are_registered_with_the_promised_structure(toy_root):
    root, data = toy_root
    b2n, shift, xd = (data[n] for n in NAMES)
    assert (b2n.num_classes, shift.num_classes, xd.num_classes) == (20, 20, 15)
    assert shift.classnames == b2n.classnames and not set(xd.classnames) & set(b2n.classnames)
    assert [b2n.template, shift.template, xd.template] == [
        "a photo of a {}.",
        "a drawing of a {}.",
        "a picture of a {}.",
    ]
    for ds in data.values():
        for split, per_class in zip(("train", "val", "test"), (32, 8, 40)):
            labels = [d.label for d in ds.split(split)]
            assert np.bincount(labels).tolist() == [per_class] * ds.num_classes
            assert all(ds.classnames[d.label] == d.classname for d in ds.split(split))
        first = ds.test[0]
        assert first.impath == str(ds.image_dir / first.relpath)
        assert Image.open(first.impath).size == (toy_data.IMAGE_SIZE, toy_data.IMAGE_SIZE)
    # base (first half) and new (second half) of toy-b2n use every colour and shape, in new combinations
    halves = [b2n.classnames[:10], b2n.classnames[10:]]
    for words in ({c.split()[0] for c in h} for h in halves):
        assert words == {"red", "yellow", "green", "blue", "purple"}
    for words in ({c.split()[1] for c in h} for h in halves):
        assert words == {"circle", "square", "triangle", "star"}
    assert all(w in COLOURS or w in SHAPES for c in b2n.classnames for w in c.split())


def test_files_match_the_generator_and_are_reused(toy_root, monkeypatch, tmp_path):
    root, data = toy_root
    ds = data["toy-shift"]
    for d in (ds.train[0], ds.val[17], ds.test[-1]):
        split = d.relpath.split("/")[0]
        index = int(d.relpath.rsplit("/", 1)[1][:-4])
        expected = np.asarray(toy_data.toy_image("toy-shift", split, d.label, index))
        assert np.array_equal(np.asarray(Image.open(d.impath)), expected)
    folder = toy_data.toy_dataset_dir("toy-shift", root)
    stamp = (folder / "split_toy-shift.json").stat().st_mtime_ns
    assert toy_data.ensure_toy_dataset("toy-shift", root) == folder
    assert (folder / "split_toy-shift.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in root.iterdir()) == [f"{n}-v{folder.name.rsplit('-v', 1)[1]}" for n in NAMES]
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path))
    assert toy_data.toy_dataset_dir("toy-xd") == tmp_path / "toy" / folder.name.replace("toy-shift", "toy-xd")


def test_shipped_weights_load_strictly_with_the_json_config(toy_clip):
    meta = json.loads(TOY_CONFIG_PATH.read_text())
    assert toy_model_config() == meta["open_clip_config"] == TOY_ARCHITECTURE
    assert meta["open_clip_config"]["text_cfg"]["context_length"] == 77
    assert meta["open_clip_config"]["text_cfg"]["vocab_size"] == 49408
    for key in ("script", "seed", "steps", "world_version", "final_loss"):
        assert key in meta["provenance"]
    assert TOY_WEIGHTS_PATH.stat().st_size + TOY_CONFIG_PATH.stat().st_size < 8.5e6
    assert isinstance(toy_clip, open_clip.model.CLIP) and not toy_clip.training
    assert all(p.dtype == torch.float32 for p in toy_clip.parameters())


def test_zero_shot_leaves_headroom(toy_root, toy_clip):
    root, _ = toy_root
    report = toy_headroom_report(toy_clip, root)
    assert 0.40 <= report["base_acc"] <= 0.85
    assert report["new_acc"] >= 3 * report["new_chance"]
    assert report["probe_base_acc"] >= report["base_acc"] + 0.1
    stored = json.loads(TOY_CONFIG_PATH.read_text())["headroom"]
    for key in ("base_acc", "new_acc", "probe_base_acc"):
        assert report[key] == pytest.approx(stored[key], abs=0.01)


def test_prefix_text_encoding_equals_full_context(toy_clip):
    tokens = open_clip.tokenize(["a photo of a red star.", "there is a large dotted blue heart in the image."])
    with torch.no_grad():
        full = toy_clip.encode_text(tokens)
        prefix = encode_text_prefix(toy_clip, tokens[:, : int(tokens.argmax(-1).max()) + 1])
    assert torch.allclose(full, prefix, atol=1e-5)


def test_pretrain_script_runs_deterministically(tmp_path):
    from vlprompt.cli import main

    args = ["--steps", "2", "--batch-size", "16", "--pool", "32", "--no-report"]
    pretrain_main(["--out", str(tmp_path / "a"), *args])  # python -m vlprompt.toy.pretrain
    assert main(["toy-pretrain", "--out", str(tmp_path / "b"), *args]) == 0  # the same through the command line
    a, b = (load_toy_clip(tmp_path / run / "toy_clip.safetensors") for run in "ab")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    meta = json.loads((tmp_path / "a" / "toy_clip.json").read_text())
    assert meta["provenance"]["steps"] == 2 and np.isfinite(meta["provenance"]["final_loss"])
