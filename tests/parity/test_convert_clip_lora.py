"""``vlprompt convert --from clip-lora``: a ``lora_weights.pt`` written as CLIP-LoRA's ``save_lora`` writes it
(``layer_<i>`` over the adapted attention modules, text then vision; its metadata) converts into a run whose
evaluation gives the task's own logits; its metadata fix the settings; bad files are one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from vlprompt.api import build_task, load_backbone, load_data
from vlprompt.cli import main
from vlprompt.config import BackboneConfig, make_config
from vlprompt.engine.evaluation import evaluate
from vlprompt.engine.labels import label_space

SAVED = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "out": "proj"}


def save_clip_lora(path, learner, params, encoder="both", position="all", r=2, alpha=1):
    """The reference's ``save_lora`` layout for the learner's tensors."""
    names = {id(m): n for n, m in learner.named_modules()}
    modules = learner.lora_modules()
    per = len(params)
    weights = {}
    for i in range(0, len(modules), per):
        layer = {}
        for m in modules[i : i + per]:
            kind = names[id(m)].rsplit(".", 1)[-1]
            layer[SAVED[kind]] = {"w_lora_A": m.lora_A.data.clone(), "w_lora_B": m.lora_B.data.clone()}
        weights[f"layer_{i // per}"] = layer
    meta = {"r": r, "alpha": alpha, "encoder": encoder, "params": list(params), "position": position}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weights": weights, "metadata": meta}, path)
    return path


def random_lora(cli_env, tiny_folder, overrides):
    cfg = make_config(
        "lora", "folder", data_root=str(tiny_folder), backbone=cli_env[1], pretrained=cli_env[3], overrides=overrides
    )
    backbone = load_backbone(BackboneConfig(cli_env[1], cli_env[3], device="cpu"))
    data = load_data(cfg.data)
    torch.manual_seed(1)
    task = build_task(backbone, cfg, label_space(data))
    with torch.no_grad():
        for value in task.release_state_dict().values():
            value.add_(0.05 * torch.randn_like(value))
    return task, data, evaluate(task, data.test, backbone, cfg.train, progress=False).logits


@pytest.mark.parametrize("encoder,params", [("both", "q,k,v"), ("text", "q,v,o")])
def test_converted_lora_weights_evaluate_like_the_task(tmp_path, cli_env, tiny_folder, encoder, params):
    sets = [f"lora.encoder={encoder}", f"lora.params={params}"]
    task, data, logits = random_lora(cli_env, tiny_folder, sets)
    source = save_clip_lora(tmp_path / "vitb16" / "dtd" / "4shots" / "seed1" / "lora_weights.pt", task.learner,
                            params.split(","), encoder=encoder)  # fmt: skip
    folder = ["--dataset", "folder", "--data-root", str(tiny_folder), *cli_env]
    run, evaluated = tmp_path / "run", tmp_path / "eval"
    assert main(["convert", str(source), "--from", "clip-lora", *folder, "--out", str(run)]) == 0
    meta = json.loads((run / "weights.json").read_text())
    assert meta["method"] == "lora" and meta["converted_from"]["trainer"] == "CLIP-LoRA"
    assert meta["run_config"]["components"]["lora"]["params"] == params
    ours = load_file(str(run / "weights.safetensors"))
    for key, value in task.release_state_dict().items():
        assert torch.equal(ours[key], value), key
    assert main(["eval", "--run", str(run), *folder, "--out", str(evaluated), "--save-logits"]) == 0
    converted = load_file(str(evaluated / "logits.safetensors"))["logits"]
    assert (converted - logits).abs().max() < 1e-5


def test_metadata_fix_the_settings_and_bad_files_are_refused(tmp_path, cli_env, tiny_folder, capsys):
    task, _, _ = random_lora(cli_env, tiny_folder, [])
    source = save_clip_lora(tmp_path / "lora_weights.pt", task.learner, ["q", "k", "v"])
    folder = ["--dataset", "folder", "--data-root", str(tiny_folder), *cli_env]
    args = ["convert", str(source), "--from", "clip-lora", *folder, "--out", str(tmp_path / "run")]
    assert main([*args, "--set", "lora.rank=4"]) != 0
    assert "contradicts the checkpoint, which holds lora.rank=2" in capsys.readouterr().err
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    assert main(["convert", str(tmp_path / "other.pt"), "--from", "clip-lora", *folder, "--out", str(tmp_path / "x")])
    assert "not a CLIP-LoRA lora_weights.pt" in capsys.readouterr().err
    assert main([*args, "--method", "coop"]) != 0
    assert "--from clip-lora holds a lora run" in capsys.readouterr().err
