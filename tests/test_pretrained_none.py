"""``--pretrained none`` means random weights for every backbone; an absent ``--pretrained`` the default tag."""

import json
import logging

import pytest
import torch

from vlprompt.backbones import loading
from vlprompt.cli import main
from vlprompt.config import RunConfig, make_config


@pytest.mark.parametrize("spelling", ["none", "None", "NONE"])
def test_none_survives_config_parsing_and_yaml(tmp_path, spelling):
    cfg = make_config("coop", "toy-b2n", backbone="ViT-B-32", pretrained=spelling)
    assert cfg.backbone.pretrained == "none"
    assert make_config("coop", "toy-b2n", overrides=[f"backbone.pretrained={spelling}"]).backbone.pretrained == "none"
    cfg.dump(tmp_path / "config.yaml")
    assert RunConfig.load(tmp_path / "config.yaml").backbone.pretrained == "none"
    assert make_config("coop", "toy-b2n", backbone="ViT-B-32").backbone.pretrained is None


def _no_download(monkeypatch):
    def refuse(model_name, tag, pcfg):
        raise AssertionError(f"tried to fetch {model_name} {tag}")

    monkeypatch.setattr(loading, "fetch_tag", refuse)


def test_named_backbone_random_weights_are_seeded_and_said(monkeypatch, caplog):
    _no_download(monkeypatch)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    with caplog.at_level(logging.WARNING, logger="vlprompt.backbones.loading"):
        model, spec = loading.load_clip("RN50", "none")
    assert torch.rand(1) == before  # the caller's RNG is untouched
    assert spec.pretrained == "none" and "uses random weights (--pretrained none" in caplog.text
    again, _ = loading.load_clip("RN50", "NONE")
    a, b = model.state_dict(), again.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # an evaluation rebuilds the weights a run trained on


def test_absent_pretrained_means_the_default_tag(monkeypatch):
    asked = []

    def fetch(model_name, tag, pcfg):
        asked.append((model_name, tag))
        raise loading.VLPromptError("offline")

    monkeypatch.setattr(loading, "fetch_tag", fetch)
    with pytest.raises(loading.VLPromptError, match="offline"):
        loading.load_clip("ViT-B-32", None)
    assert asked == [("ViT-B-32", "openai")]


def test_zeroshot_cli_with_pretrained_none(tmp_path, monkeypatch, tiny_folder, tiny_vit_files, capsys):
    _no_download(monkeypatch)
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    cfg, _ = tiny_vit_files
    out = tmp_path / "zs"
    argv = ["zeroshot", "--dataset", "folder", "--data-root", str(tiny_folder), "--out", str(out)]
    assert main([*argv, "--backbone", str(cfg), "--pretrained", "none"]) == 0
    assert "(none)" in capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    assert res["pretrained"] == "none"


def test_image_statistics_follow_the_weights(tmp_path, tiny_vit_files):
    from vlprompt.backbones import load_backbone

    cfg, weights = tiny_vit_files
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "open_clip_model.safetensors").write_bytes(weights.read_bytes())
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": json.loads(cfg.read_text()), "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3}})
    )
    bb = load_backbone(str(cfg), str(folder), device="cpu")
    assert bb.image_mean == (0.5, 0.5, 0.5) and bb.image_std == (0.5, 0.5, 0.5)
    assert load_backbone(str(cfg), str(weights), device="cpu").image_mean[0] == pytest.approx(0.48145466)
