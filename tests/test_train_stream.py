"""The training stream: fresh augmented views per epoch (as the references), the bounded-pool speed option,
the parity order/transform, and a feature cache that never serves stale features."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from vlprompt import create_task, make_config
from vlprompt.cli import main
from vlprompt.data import build_dataset
from vlprompt.engine.features import FeatureCache
from vlprompt.engine.train_data import epoch_batches, train_stream
from vlprompt.task import LabelSpace


def stream(tiny_vit, tiny_folder, tmp_path, *sets, cache=True, method="coop"):
    learner = ["coop.n_ctx=4"] if method == "coop" else []
    cfg = make_config(method, "folder", data_root=str(tiny_folder), overrides=[*learner, *sets])
    dataset = build_dataset("folder", tiny_folder)
    task = create_task(method, tiny_vit, LabelSpace(dataset.classnames), overrides=learner)
    fcache = FeatureCache(tiny_vit, root=tmp_path / "cache") if cache else None
    return train_stream(task, dataset.train, tiny_vit, cfg.train, cfg.data, fcache), dataset


def epoch_features(data, epoch):
    """{item index: feature} of one epoch (the order of the batches does not matter)."""
    generator = torch.Generator().manual_seed(epoch)
    return {int(i): x for xs, _, idx in data.make_loader(epoch, generator) for x, i in zip(xs, idx)}


def test_fresh_view_every_epoch_by_default(tiny_vit, tiny_folder, tmp_path):
    data, _ = stream(tiny_vit, tiny_folder, tmp_path)
    assert data.features
    per_epoch = [epoch_features(data, e) for e in range(5)]
    item = next(iter(per_epoch[0]))
    views = [per_epoch[e][item] for e in range(5)]
    assert all(not torch.allclose(views[a], views[b]) for a in range(5) for b in range(a + 1, 5))
    # the same epoch gives the same view again (seeded by run seed, view and item)
    assert torch.equal(epoch_features(data, 3)[item], views[3])


def test_feature_pool_uses_at_most_n_views(tiny_vit, tiny_folder, tmp_path):
    data, _ = stream(tiny_vit, tiny_folder, tmp_path, "train.feature_pool=2")
    seen = {}
    for epoch in range(6):
        for item, x in epoch_features(data, epoch).items():
            if not any(torch.equal(x, y) for y in seen.setdefault(item, [])):
                seen[item].append(x)
    assert max(len(v) for v in seen.values()) <= 2 and min(len(v) for v in seen.values()) >= 1
    assert any(len(v) == 2 for v in seen.values())


def test_cached_views_equal_the_images_path(tiny_vit, tiny_folder, tmp_path):
    """The cache computes the very augmentations the uncached path feeds the image tower."""
    cached, _ = stream(tiny_vit, tiny_folder, tmp_path)
    images, _ = stream(tiny_vit, tiny_folder, tmp_path, cache=False)
    for epoch in (0, 2):
        feats = epoch_features(cached, epoch)
        generator = torch.Generator().manual_seed(epoch)
        for batch_images, _, idx in images.make_loader(epoch, generator):
            with torch.no_grad():
                encoded = tiny_vit.encode_image(batch_images)
            for x, i in zip(encoded, idx):
                assert torch.allclose(x, feats[int(i)], atol=1e-5)


def test_sequential_order_and_resize_are_deterministic(tiny_vit, tiny_folder, tmp_path):
    sets = ["data.train_order=sequential", "data.train_transform=resize", "train.batch_size=5"]
    data, dataset = stream(tiny_vit, tiny_folder, tmp_path, *sets, cache=False)
    first = list(data.make_loader(0, torch.Generator().manual_seed(0)))
    again = list(data.make_loader(3, torch.Generator().manual_seed(9)))
    order = [int(i) for _, _, idx in first for i in idx]
    assert order == list(range(20))  # 24 items, batch 5: stored order, last partial batch dropped
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))  # no randomness at all
    img = Image.open(dataset.train[0].impath).convert("RGB").resize((32, 32), Image.BICUBIC)
    mean = torch.tensor(tiny_vit.image_mean).view(3, 1, 1)
    std = torch.tensor(tiny_vit.image_std).view(3, 1, 1)
    expected = (torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255 - mean) / std
    assert torch.allclose(first[0][0][0], expected, atol=1e-5)


@pytest.mark.parametrize("n, batch, expected", [(24, 5, [5, 5, 5, 5]), (3, 5, [3]), (10, 5, [5, 5])])
def test_drop_last_only_with_a_full_batch(n, batch, expected):
    batches = epoch_batches(torch.arange(n), batch, "sequential", torch.Generator())
    assert [len(b) for b in batches] == expected


def test_cache_and_no_cache_train_the_same_prompts(tmp_path, cli_env, tiny_folder):
    def train(out, *extra):
        args = ["train", "--method", "coop", "--dataset", "folder", "--data-root", str(tiny_folder), "--out", str(out),
                "--epochs", "2", "--batch-size", "4", "--lr", "0.01", "--set", "coop.n_ctx=4", *cli_env, *extra]  # fmt: skip
        assert main(args) == 0
        return load_file(str(out / "weights.safetensors"))["learner.ctx"]

    assert torch.allclose(train(tmp_path / "cached"), train(tmp_path / "images", "--no-feature-cache"), atol=1e-4)


# ---------------------------------------------------------------------------------------------- stale features
def _zeroshot(out, folder, cli_env, *extra):
    assert (
        main(["zeroshot", "--dataset", "folder", "--data-root", str(folder), "--out", str(out), *cli_env, *extra]) == 0
    )
    return json.loads((out / "results.json").read_text())


def test_replaced_test_images_are_re_encoded(tmp_path, cli_env, tiny_folder):
    folder = tmp_path / "data"
    shutil.copytree(tiny_folder, folder)
    _zeroshot(tmp_path / "a", folder, cli_env, "--save-logits")
    # give every test image of class 0 the pixels of a class-1 image (same paths, new content)
    classes = sorted(p.name for p in (folder / "test").iterdir())
    donor = next((folder / "test" / classes[1]).iterdir())
    for target in (folder / "test" / classes[0]).iterdir():
        shutil.copyfile(donor, target)
        os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    _zeroshot(tmp_path / "b", folder, cli_env, "--save-logits")
    _zeroshot(tmp_path / "c", folder, cli_env, "--no-feature-cache", "--save-logits")
    logits = {run: load_file(str(tmp_path / run / "logits.safetensors"))["logits"] for run in "abc"}
    assert torch.allclose(logits["b"], logits["c"], atol=1e-5)  # the cache re-encoded the replaced images
    assert not torch.allclose(logits["a"], logits["b"], atol=1e-3)


def test_skip_corrupt_entry_is_not_reused_by_a_strict_run(tmp_path, cli_env, tiny_folder, capsys):
    folder = tmp_path / "data"
    shutil.copytree(tiny_folder, folder)
    bad = next((folder / "test").iterdir()) / "broken.png"
    bad.write_bytes(b"not an image")
    skipped = _zeroshot(tmp_path / "a", folder, cli_env, "--skip-corrupt")
    assert skipped["num_images"] == 16 and "broken.png" in capsys.readouterr().err  # listed on the console
    again = _zeroshot(tmp_path / "b", folder, cli_env, "--skip-corrupt")  # from the cache: still listed
    assert again["num_images"] == 16 and "broken.png" in capsys.readouterr().err
    code = main(["zeroshot", "--dataset", "folder", "--data-root", str(folder), "--out", str(tmp_path / "c"), *cli_env])
    assert code == 2 and "broken.png" in capsys.readouterr().err  # a strict run stops at the unreadable image
    bad.unlink()
    Image.new("RGB", (8, 8), (200, 30, 60)).save(bad.with_suffix(".png"))  # repaired: read again
    assert _zeroshot(tmp_path / "d", folder, cli_env)["num_images"] == 17


def _promptsrc_epoch(tiny_vit, tiny_folder, tmp_path, cache: bool):
    """One training epoch of PromptSRC (image prompts) through the trainer's ``run_epoch``: ``(epoch record,
    final trainable tensors, images through the image tower during the epoch's steps)``."""
    from vlprompt.engine.trainer import run_epoch

    cfg = make_config("promptsrc", "folder", data_root=str(tiny_folder), overrides=["train.batch_size=4"])
    dataset = build_dataset("folder", tiny_folder)
    torch.manual_seed(0)
    task = create_task("promptsrc", tiny_vit, LabelSpace(dataset.classnames))
    fcache = FeatureCache(tiny_vit, root=tmp_path / "cache") if cache else None
    data = train_stream(task, dataset.train, tiny_vit, cfg.train, cfg.data, fcache)
    if cache:
        list(data.make_loader(0, torch.Generator()))  # fills the cache: the count below is the steps' own work
    seen = []
    handle = tiny_vit.clip.visual.conv1.register_forward_hook(lambda m, args, out: seen.append(len(args[0])))
    try:
        optimizer = torch.optim.SGD([p for g in task.param_groups(0.01) for p in g["params"]], lr=0.01)
        record = run_epoch(task, data, optimizer, cfg.train, 1, 0, torch.device("cpu"), False)
    finally:
        handle.remove()
    return record, {k: v.detach().clone() for k, v in task.trainable_parameters().items()}, sum(seen)


def test_promptsrc_teacher_comes_from_the_cache_of_the_same_views(tiny_vit, tiny_folder, tmp_path):
    """With the feature cache, PromptSRC's frozen image teacher is the cached feature of each batch image's own
    view: one image-tower pass per image and step instead of two, with the same losses and weights."""
    one_pass, weights, images = _promptsrc_epoch(tiny_vit, tiny_folder, tmp_path, cache=True)
    two_pass, weights_ref, images_ref = _promptsrc_epoch(tiny_vit, tiny_folder, tmp_path, cache=False)
    assert images == 24 and images_ref == 48  # 24 tiny-folder train items, 6 full batches of 4
    assert set(one_pass) == set(two_pass) and one_pass["src_image"] > 0
    for name, value in two_pass.items():
        assert one_pass[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    for name, value in weights_ref.items():
        torch.testing.assert_close(weights[name], value, rtol=1e-5, atol=1e-7)


def test_frozen_teacher_rides_only_with_image_prompts_and_a_cache(tiny_vit, tiny_folder, tmp_path):
    src, _ = stream(tiny_vit, tiny_folder, tmp_path, method="promptsrc")
    batch = next(iter(src.make_loader(0, torch.Generator().manual_seed(0))))
    images, _, idx, frozen = batch
    with torch.no_grad():
        expected = tiny_vit.encode_image(images)
    torch.testing.assert_close(frozen, expected, rtol=1e-5, atol=1e-6)
    assert len(frozen) == len(idx)
    uncached, _ = stream(tiny_vit, tiny_folder, tmp_path, method="promptsrc", cache=False)
    assert len(next(iter(uncached.make_loader(0, torch.Generator())))) == 3
    maple, _ = stream(tiny_vit, tiny_folder, tmp_path, method="maple")
    assert len(next(iter(maple.make_loader(0, torch.Generator())))) == 3
