"""Your own template(s) and class names: files, the dataset, every template consumer, the CLI and sweeps."""

import json
import re

import pytest
import torch
import torch.nn.functional as F

from vlprompt.cli import main
from vlprompt.config import DataConfig
from vlprompt.data import build_dataset
from vlprompt.data.overrides import read_classnames, read_templates
from vlprompt.engine.labels import label_space
from vlprompt.errors import VLPromptError
from vlprompt.methods.prompts import hand_crafted_features
from vlprompt.pipeline.identity import data_identity
from vlprompt.task import LabelSpace, PromptTask

FLOWER = "a photo of a {}, a type of flower."


def _config(method, **sections):
    from vlprompt.config import make_config

    return make_config(method, "folder", overrides=[f"{k}={v}" for k, v in sections.items()]).components


# ------------------------------------------------------------------------------------------ files
def test_template_files_txt_and_json(tmp_path):
    txt = tmp_path / "t.txt"
    txt.write_text("# mine\na photo of a {}.\n\n{} texture.\n")
    assert read_templates(txt) == ["a photo of a {}.", "{} texture."]
    js = tmp_path / "t.json"
    js.write_text(json.dumps(["itap of a {}.", "art of the {}."]))
    assert read_templates(js) == ["itap of a {}.", "art of the {}."]


@pytest.mark.parametrize("bad", ["a photo.", "{} and {}", "a {x} of {}", "{0} photo"])
def test_bad_templates_are_one_line_errors(tmp_path, bad):
    path = tmp_path / "t.txt"
    path.write_text(f"a photo of a {{}}.\n{bad}\n")
    with pytest.raises(VLPromptError, match=rf"{path} line 2 .*exactly one \{{\}}"):
        read_templates(path)
    with pytest.raises(VLPromptError, match="--template"):
        DataConfig(dataset="folder", template=bad)


def test_classnames_file_forms(tmp_path):
    for name, text, expected in [
        ("m.json", json.dumps({"red_circle": "crimson disc"}), {"red_circle": "crimson disc"}),
        ("l.json", json.dumps(["a", "b"]), ["a", "b"]),
        (
            "m.txt",
            "red_circle: crimson disc\n# note\nblue_star: azure star\n",
            {"red_circle": "crimson disc", "blue_star": "azure star"},
        ),
        ("l.txt", "crimson disc\n\nazure star\n", ["crimson disc", "azure star"]),
    ]:
        (tmp_path / name).write_text(text)
        assert read_classnames(tmp_path / name) == expected
    (tmp_path / "mixed.txt").write_text("red_circle: crimson disc\nazure star\n")
    with pytest.raises(VLPromptError, match="mixed.txt mixes"):
        read_classnames(tmp_path / "mixed.txt")


# ------------------------------------------------------------------------------------------ the dataset
def test_dataset_overrides(tmp_path, tiny_folder):
    names = tmp_path / "names.json"  # folder names and the dataset's own names are both accepted as keys
    names.write_text(json.dumps({"blue_star": "azure star", "green square": "emerald square", "red_circle": "crimson disc",
                                 "yellow_moon": "golden moon"}))  # fmt: skip
    ens = tmp_path / "ens.txt"
    ens.write_text("itap of a {}.\nart of the {}.\n")
    ds = build_dataset("folder", tiny_folder, classnames_file=names, template=FLOWER, templates_file=ens)
    assert ds.classnames == ["azure star", "emerald square", "crimson disc", "golden moon"]
    space = label_space(ds)
    assert space.template == space.kgcoop_template == FLOWER
    assert space.ensemble_templates == ["itap of a {}.", "art of the {}."]
    # base/new subsampling keeps the renamed classes
    assert build_dataset("folder", tiny_folder, classnames_file=names, subsample="new").classnames == [
        "crimson disc", "golden moon"]  # fmt: skip
    plain = label_space(build_dataset("folder", tiny_folder))
    assert plain.template == "a photo of a {}." and plain.ensemble_templates[-1] == "a photo of a {}."


@pytest.mark.parametrize(
    "content, message",
    [
        ({"blue_star": "a", "green_square": "b", "red_circle": "c"}, "no entry for class 'yellow_moon' (label 3)"),
        (
            {"blue_star": "a", "green_square": "b", "red_circle": "c", "yellow_moon": "d", "cat": "e"},
            "'cat' is not a class",
        ),
        (["a", "b"], "lists 2 names but --dataset folder has 4 classes"),
        (["a", "b", "a", "c"], "two classes the name 'a'"),
    ],
)
def test_bad_classnames_files_name_the_file(tmp_path, tiny_folder, content, message):
    path = tmp_path / "names.json"
    path.write_text(json.dumps(content))
    with pytest.raises(VLPromptError, match=re.escape(message)) as err:
        build_dataset("folder", tiny_folder, classnames_file=path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_identity_has_prompt_settings_only_when_set(tmp_path):
    assert not {"template", "templates_file", "classnames_file"} & set(data_identity(DataConfig()))
    identity = data_identity(DataConfig(template=FLOWER, classnames_file="names.json"))
    assert identity["template"] == FLOWER and identity["classnames_file"].endswith("/names.json")


# ------------------------------------------------------------------------------------------ template consumers
def test_consumers_use_the_label_space_template(tiny_vit):
    names = ["red circle", "blue star"]
    space = LabelSpace(names, template=FLOWER, kgcoop_template=FLOWER, ensemble_templates=["itap of a {}.", FLOWER])
    expected = hand_crafted_features(tiny_vit, names, [FLOWER])
    task = PromptTask(tiny_vit, "zeroshot", _config("zeroshot"), space)
    assert torch.allclose(task.learner.classifier, expected)
    task = PromptTask(tiny_vit, "zeroshot", _config("zeroshot", **{"zeroshot.templates": "ensemble"}), space)
    assert torch.allclose(task.learner.classifier, hand_crafted_features(tiny_vit, names, ["itap of a {}.", FLOWER]))
    task = PromptTask(tiny_vit, "coop+kg+dept", _config("coop+kg+dept"), space)
    assert torch.allclose(task.addons["kg"].targets, expected)


@pytest.mark.parametrize("method", ["coop", "cocoop", "lpt"])
def test_ctx_init_template_starts_as_the_template(tiny_vit, method):
    """With ctx_init=template the initial prompt *is* the template: its words initialise the context, the words
    after {} follow the class name, so the text features equal the zero-shot features of the template."""
    names = ["red circle", "blue star"]
    settings = {f"{method}.ctx_init": "template", f"{method}.n_ctx" if method != "lpt" else "lpt.n_ctx_text": 4}
    if method == "lpt":
        settings["lpt.depth_text"] = 1
    space = LabelSpace(names, template=FLOWER)
    task = PromptTask(tiny_vit, method, _config(method, **settings), space)
    learner = task.learner
    assert (
        learner.prompts.ids[0].tolist()
        == tiny_vit.tokenize([FLOWER.format("red circle")])[0, : learner.prompts.ids.shape[1]].tolist()
    )
    if method == "cocoop":
        return  # its context is conditioned on the image
    with torch.no_grad():
        text = F.normalize(learner.text_features().float(), dim=-1)
    assert torch.allclose(text, hand_crafted_features(tiny_vit, names, [FLOWER]), atol=1e-4)


def test_ctx_init_template_checks_the_word_count(tiny_vit):
    cfg = _config("coop", **{"coop.ctx_init": "template", "coop.n_ctx": 16})
    with pytest.raises(VLPromptError, match=r"has 4 words before \{\} but coop.n_ctx=16; --set coop.n_ctx=4"):
        PromptTask(tiny_vit, "coop", cfg, LabelSpace(["a", "b"], template=FLOWER))
    # no words before {}: a random context, and the template's ending after the name
    task = PromptTask(tiny_vit, "coop", _config("coop", **{"coop.ctx_init": "template", "coop.n_ctx": 2}),
                      LabelSpace(["red circle"], template="{} texture."))  # fmt: skip
    assert task.learner.prompts.ids[0, 3:7].tolist() == tiny_vit.tokenize(["red circle texture."])[0, 1:5].tolist()


# ------------------------------------------------------------------------------------------ command line
def _split_file(tmp_path, folder):
    rows = {
        split: [[f"{split}/{c.name}/{p.name}", i, c.name] for i, c in enumerate(sorted((folder / split).iterdir()))
                for p in sorted(c.iterdir())]
        for split in ("train", "val", "test")
    }  # fmt: skip
    path = tmp_path / "split.json"
    path.write_text(json.dumps(rows))
    return path


def test_zeroshot_uses_and_records_the_template(tmp_path, cli_env, tiny_folder, tiny_vit):
    split = _split_file(tmp_path, tiny_folder)
    args = ["zeroshot", "--dataset", "split", "--split-file", str(split), "--data-root", str(tiny_folder), *cli_env]
    assert main([*args, "--template", "{} texture.", "--out", str(tmp_path / "zs"), "--save-logits"]) == 0
    res = json.loads((tmp_path / "zs" / "results.json").read_text())
    assert res["template"] == "{} texture."
    from safetensors.torch import load_file

    logits = load_file(str(tmp_path / "zs" / "logits.safetensors"))["logits"]
    from vlprompt.data.images import ImageDataset
    from vlprompt.data.transforms import build_transform

    ds = build_dataset("folder", tiny_folder)
    items = ImageDataset(ds.test, build_transform(False, tiny_vit.image_size))
    f = tiny_vit.clip.encode_image(torch.stack([items[i][0] for i in range(len(items))]), normalize=True)
    t = tiny_vit.clip.encode_text(tiny_vit.tokenize([f"{c} texture." for c in ds.classnames]), normalize=True)
    assert torch.allclose(logits, tiny_vit.logit_scale * f @ t.t(), atol=1e-3)

    ens = tmp_path / "ens.json"
    ens.write_text(json.dumps(["itap of a {}.", "{} texture."]))
    assert main([*args, "--templates", str(ens), "--out", str(tmp_path / "ens")]) == 0
    res = json.loads((tmp_path / "ens" / "results.json").read_text())
    assert res["templates"] == "ensemble" and res["ensemble_templates"] == ["itap of a {}.", "{} texture."]


def test_train_and_eval_record_template_and_class_names(tmp_path, cli_env, tiny_folder):
    names = tmp_path / "names.txt"
    names.write_text(
        "blue_star: azure star\ngreen_square: emerald square\nred_circle: crimson disc\nyellow_moon: moon\n"
    )
    out = tmp_path / "run"
    args = ["--dataset", "folder", "--data-root", str(tiny_folder), "--template", FLOWER, "--classnames", str(names)]
    train = ["train", "--method", "kgcoop", *args, "--epochs", "1", "--batch-size", "8", "--out", str(out), *cli_env]
    assert main(train) == 0
    res = json.loads((out / "results.json").read_text())
    meta = json.loads((out / "weights.json").read_text())
    assert (
        res["template"] == FLOWER
        and meta["label_space"]["template"] == meta["label_space"]["kgcoop_template"] == FLOWER
    )
    assert meta["label_space"]["classnames"] == ["azure star", "emerald square", "crimson disc", "moon"]
    assert meta["run_config"]["data"]["classnames_file"] == str(names)
    # eval on the run's own dataset reuses its prompts: the seen label space
    ev = tmp_path / "eval"
    assert (
        main(["eval", "--run", str(out), "--dataset", "folder", "--data-root", str(tiny_folder), "--out", str(ev)]) == 0
    )
    res = json.loads((ev / "results.json").read_text())
    assert res["template"] == FLOWER and res["label_space"] == "seen"
    ev2 = tmp_path / "eval2"
    assert main(["eval", "--run", str(out), *args[:4], "--template", "{} texture.", "--out", str(ev2)]) == 0
    assert json.loads((ev2 / "results.json").read_text())["template"] == "{} texture."


def test_sweep_passes_prompts_to_every_job(tmp_path, capsys):
    names = tmp_path / "names.json"
    names.write_text('{"red_circle": "red round thing"}')
    argv = ["sweep", "--protocol", "b2n", "--methods", "zeroshot", "coop", "--datasets", "toy", "--seeds", "1",
            "--root", str(tmp_path / "sw"), "--template", "{} texture.", "--classnames", str(names),
            "--templates", "ensemble", "--dry-run"]  # fmt: skip
    assert main(argv) == 0
    commands = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("vlprompt ")]
    assert len(commands) == 4
    for command in commands:
        assert "--template '{} texture.'" in command and f"--classnames {names.resolve()}" in command
        assert ("--templates ensemble" in command) == command.startswith("vlprompt zeroshot")
