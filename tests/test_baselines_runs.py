"""CLIP-LoRA, ProGrad and TCP end to end: trained (a two-step budget) and evaluated on the real DTD images of
``../shared/data/dtd10`` with the tiny OpenAI-architecture CLIP from the CLI and the Python API (then ``eval``,
``predict`` and ``--init-from`` on the run), and in a base-to-new ``vlprompt sweep`` on the toy world with its table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

import vlprompt
from vlprompt.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SPLIT = SHARED / "reference" / "dtd10" / "split_zhou_DescribableTextures_10classes.json"
IMAGES = SHARED / "data" / "dtd10" / "images"
MODELS = SHARED / "reference" / "models"
METHODS = ("lora", "coop+prograd", "tcp")
#: two optimizer steps of batch 8, whatever the method's published epochs or iterations
FAST = ["--set", "train.steps=2", "--set", "train.batch_size=8"]


@pytest.fixture(scope="module")
def dtd10(tmp_path_factory):
    if not (IMAGES.is_dir() and SPLIT.is_file() and (MODELS / "tiny-openai.json").is_file()):
        pytest.skip(f"shared DTD images / tiny CLIP not available under {SHARED}")
    root = tmp_path_factory.mktemp("dtd10")
    split = shutil.copy(SPLIT, root / SPLIT.name)  # the few-shot cache is written next to the copy
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLPROMPT_CACHE", str(root / "cache"))
        yield {
            "backbone": str(MODELS / "tiny-openai.json"),
            "pretrained": str(MODELS / "tiny-openai.safetensors"),
            "split": str(split),
        }


def api_config(d, method, overrides, out):
    """The Python API's config of a run on the DTD images of ``cli_flags`` (4 shots)."""
    return vlprompt.make_config(
        method,
        "split",
        split_file=d["split"],
        data_root=str(IMAGES),
        shots=4,
        backbone=d["backbone"],
        pretrained=d["pretrained"],
        overrides=overrides,
        out=str(out),
    )


def cli_flags(d):
    return ["--dataset", "split", "--split-file", d["split"], "--data-root", str(IMAGES), "--shots", "4",
            "--backbone", d["backbone"], "--pretrained", d["pretrained"]]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_dtd10_from_the_cli_then_eval_predict_and_init_from(dtd10, tmp_path, method, capsys):
    flags = [*cli_flags(dtd10), "--method", method, *FAST]
    run = tmp_path / "run"
    assert main(["train", *flags, "--subsample", "base", "--out", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["method"] == method and results["num_classes"] == 5
    evaluated = tmp_path / "new"
    assert main(["eval", "--run", str(run), *cli_flags(dtd10), "--subsample", "new", "--out", str(evaluated)]) == 0
    new = json.loads((evaluated / "results.json").read_text())
    assert new["num_classes"] == 5 and new["label_space"] == "unseen"
    image = next(IMAGES.rglob("*.jpg"))
    capsys.readouterr()
    assert main(["predict", "--run", str(run), str(image), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["prediction"]
    exported = tmp_path / "classifier.safetensors"
    code = main(["export", "--run", str(run), "--out", str(exported)])
    if method == "lora":  # LoRA adapts the image tower: no fixed classifier over open_clip's image features
        assert code != 0 and "changes the image tower" in capsys.readouterr().err
    else:
        assert code == 0 and load_file(str(exported))["class_embeddings"].shape[0] == 5
    again = tmp_path / "again"
    steps0 = ["--set", "train.steps=1"]
    assert main(["train", *flags, *steps0, "--subsample", "base", "--init-from", str(run), "--out", str(again)]) == 0
    assert load_file(str(again / "weights.safetensors")).keys() == load_file(str(run / "weights.safetensors")).keys()


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_dtd10_from_the_python_api(dtd10, tmp_path, method):
    cfg = api_config(dtd10, method, FAST[1::2], tmp_path / "run")
    result = vlprompt.train(cfg, quiet=True)
    assert 0 <= result.results["accuracy"] <= 100 and result.results["num_classes"] == 10
    loaded = vlprompt.load_run(tmp_path / "run")
    prediction = loaded.predict([next(IMAGES.rglob("*.jpg"))])
    assert prediction.logits.shape == (1, 10)


@pytest.mark.slow
def test_toy_sweep_with_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "sweep"
    argv = ["sweep", "--protocol", "b2n", "--datasets", "toy", "--methods", *METHODS, "--seeds", "1", *FAST]
    assert main([*argv, "--root", str(root)]) == 0
    for method in ("lora", "coop_prograd", "tcp"):
        for kind in ("train", "eval-new"):
            assert (root / "b2n" / method / "toy-b2n" / "shots16" / "seed1" / kind / "results.json").is_file()
    capsys.readouterr()
    assert main(["table", str(root)]) == 0
    table = capsys.readouterr().out
    assert all(m in table for m in METHODS)


def test_tip_adapter_f_cache_folder_converts_with_its_fine_tuned_keys(dtd10, tmp_path):
    """run_tip_adapter_F's cache folder (keys_4shots.pt, values_4shots.pt and best_F_4shots.pt, the weight of its
    adapter: the fine-tuned keys transposed) converts as tip_adapter_f (inferred from the names) holding the fine-tuned
    keys, and eval takes the run; converted as tip_adapter, the fine-tuned keys are reported unused."""
    import torch

    embed = json.loads(Path(dtd10["backbone"]).read_text())["embed_dim"]
    g = torch.Generator().manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(embed, 20, generator=g), dim=0)
    tuned = keys + 0.1 * torch.randn(keys.shape, generator=g)
    folder = tmp_path / "caches"
    folder.mkdir()
    torch.save(keys, folder / "keys_4shots.pt")
    torch.save(torch.eye(5).repeat_interleave(4, 0).half(), folder / "values_4shots.pt")
    torch.save(torch.nn.Parameter(tuned.t()), folder / "best_F_4shots.pt")  # as the reference saves adapter.weight
    flags = [*cli_flags(dtd10), "--subsample", "base"]
    assert main(["convert", "--from", "tip-adapter", str(folder), *flags, "--out", str(tmp_path / "f")]) == 0
    weights = load_file(str(tmp_path / "f" / "weights.safetensors"))
    assert json.loads((tmp_path / "f" / "weights.json").read_text())["method"] == "tip_adapter_f"
    assert torch.equal(weights["learner.cache_keys"], tuned)
    assert main(["eval", "--run", str(tmp_path / "f"), *flags, "--out", str(tmp_path / "f-eval")]) == 0
    assert json.loads((tmp_path / "f-eval" / "results.json").read_text())["accuracy"] >= 0
    argv = ["convert", "--from", "tip-adapter", str(folder), "--method", "tip_adapter", *flags]
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert torch.equal(load_file(str(tmp_path / "plain" / "weights.safetensors"))["learner.cache_keys"], keys)


#: the few-shot baselines with settings that keep a run to seconds (Tip-Adapter's β/α grid and lpclip's C search cut)
FEW_SHOT = {
    "clip_adapter": FAST,
    "tip_adapter": ["--set", "tip_adapter.augment_views=2", "--set", "tip_adapter.beta_steps=4"],
    "tip_adapter_f": [*FAST, "--set", "tip_adapter_f.augment_views=2", "--set", "tip_adapter_f.beta_steps=4"],
    "linear_probe": ["--set", "linear_probe.grid=1,0.01", "--set", "linear_probe.steps=1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("method", FEW_SHOT)
def test_dtd10_few_shot_baselines_from_the_cli_and_the_python_api(dtd10, tmp_path, method, capsys):
    """Trained or fitted on the real DTD images (4 shots of the 10 classes), evaluated, predicted from the CLI; the
    same from the Python API (its --set values as overrides)."""
    run = tmp_path / "run"
    assert main(["train", *cli_flags(dtd10), "--method", method, *FEW_SHOT[method], "--out", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    assert (
        results["method"] == method
        and results["num_classes"] == 10
        and ("fit" in results) == (method != "clip_adapter")
    )
    assert main(["eval", "--run", str(run), *cli_flags(dtd10), "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["accuracy"] == results["accuracy"]
    capsys.readouterr()
    assert main(["predict", "--run", str(run), str(next(IMAGES.rglob("*.jpg"))), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["prediction"]
    cfg = api_config(dtd10, method, FEW_SHOT[method][1::2], tmp_path / "api")
    assert vlprompt.train(cfg, quiet=True).results["accuracy"] == results["accuracy"]
    assert vlprompt.load_run(tmp_path / "api").predict([next(IMAGES.rglob("*.jpg"))]).logits.shape == (1, 10)
