"""`vlprompt predict`, `vlprompt export` (its README snippet on plain open_clip equals `vlprompt eval`) and
`vlprompt train --log tensorboard`, on the embedded toy CLIP, offline."""

import csv
import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from vlprompt import progress
from vlprompt.cli import main
from vlprompt.errors import VLPromptError

README = Path(__file__).resolve().parents[1] / "README.md"
TOY = Path(__import__("vlprompt").__file__).parent / "toy" / "assets"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, tiny_folder):
    """coop+dept trained 2 epochs on the tiny image folder with the toy CLIP, and `vlprompt eval` of it."""
    root = tmp_path_factory.mktemp("toy_run")
    data = ["--dataset", "folder", "--data-root", str(tiny_folder)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLPROMPT_CACHE", str(root / "cache"))
        train = ["train", "--method", "coop+dept", *data, "--epochs", "2", "--batch-size", "4", "--set", "coop.n_ctx=2"]
        assert main([*train, "--out", str(root / "run"), "--quiet"]) == 0
        assert (
            main(["eval", "--run", str(root / "run"), *data, "--out", str(root / "eval"), "--save-logits", "-q"]) == 0
        )
    progress.configure()
    rows = list(csv.DictReader((root / "eval" / "predictions.csv").read_text().splitlines()))
    probs = load_file(str(root / "eval" / "logits.safetensors"))["logits"].softmax(-1).max(-1).values
    expected = {str(tiny_folder / r["image"]): (r["prediction_name"], float(p)) for r, p in zip(rows, probs)}
    return root, expected


def test_predict_equals_eval(toy_run, tiny_folder, capsys, monkeypatch):
    root, expected = toy_run
    monkeypatch.setenv("VLPROMPT_CACHE", str(root / "cache"))
    assert main(["predict", "--run", str(root / "run"), str(tiny_folder / "test"), "--format", "json", "-q"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(expected) == 16
    for row in rows:
        name, prob = expected[row["image"]]
        assert row["prediction"] == name and row["probability"] == pytest.approx(prob, abs=1e-4)
        assert row["topk"][0]["class"] == name and len(row["topk"]) == 4
    image = str(tiny_folder / "test" / "red_circle" / "red_circle_0.png")
    assert (
        main(["predict", "--run", str(root / "run"), image, "--classnames", "red circle,blue star", "--format", "csv"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "image,prediction,probability,top1,prob1,top2,prob2"
    assert lines[1].split(",")[1] in ("red circle", "blue star")


def test_predict_bad_input_is_one_line(toy_run, tmp_path, capsys):
    root, _ = toy_run
    assert main(["predict", "--run", str(root / "run"), str(tmp_path / "nope.png")]) == 2
    assert "nope.png not found" in capsys.readouterr().err
    assert main(["predict", "--run", str(root / "run"), str(tmp_path), "--classnames", "cat"]) == 2
    assert "no images" in capsys.readouterr().err


def readme_snippet() -> str:
    section = README.read_text().split("### Predict and export", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


def toy_open_clip_dir(path: Path) -> Path:
    """The toy CLIP as an open_clip ``local-dir:`` model (its config and weights), for the plain-open_clip snippet."""
    path.mkdir()
    config = json.loads((TOY / "toy_clip.json").read_text())["open_clip_config"]
    (path / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": {}}))
    shutil.copy(TOY / "toy_clip.safetensors", path / "open_clip_model.safetensors")
    return path


def test_exported_classifier_on_plain_open_clip_equals_eval(toy_run, tmp_path, tiny_folder, monkeypatch, capsys):
    root, expected = toy_run
    monkeypatch.setenv("VLPROMPT_CACHE", str(root / "cache"))
    head = tmp_path / "head.safetensors"
    assert main(["export", "--run", str(root / "run"), "--out", str(head)]) == 0
    assert "coop+dept classifier over 4 classes" in capsys.readouterr().out
    tensors = load_file(str(head))
    assert set(tensors) == {"class_embeddings", "logit_scale", "dept_weight", "dept_film_scale", "dept_film_bias",
                            "dept_head_weight", "dept_head_bias"}  # fmt: skip
    assert torch.allclose(tensors["class_embeddings"].norm(dim=-1), torch.ones(4))
    (tmp_path / "classify.py").write_text(readme_snippet())
    model = f"local-dir:{toy_open_clip_dir(tmp_path / 'toy')}"
    images = sorted(expected)
    runner = (
        "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'vlprompt'], 'the snippet imported vlprompt'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", runner, str(tmp_path / "classify.py"), str(head), model, "unused", *images],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [path for path, _, _ in out] == images
    for path, name, prob in out:
        assert name == expected[path][0] and float(prob) == pytest.approx(expected[path][1], abs=1e-4)

    # other class names: an unseen label space, so no DePT head
    assert main(["export", "--run", str(root / "run"), "--out", str(head), "--classnames", "red circle,blue star"]) == 0
    tensors = load_file(str(head))
    assert set(tensors) == {"class_embeddings", "logit_scale"} and tensors["class_embeddings"].shape[0] == 2
    with safe_open(str(head), "pt") as f:
        assert json.loads(f.metadata()["classnames"]) == ["red circle", "blue star"]


@pytest.mark.parametrize(
    "method, message",
    [("cocoop", "depends on each image"), ("maple", "changes the image tower"), ("vpt", "changes the image tower")],
)
def test_export_refuses_methods_without_a_fixed_classifier(tiny_vit, method, message):
    from vlprompt.api import create_task
    from vlprompt.export import check_exportable

    with pytest.raises(VLPromptError, match=message):
        check_exportable(create_task(method, tiny_vit, ["red circle", "blue star"]))
    check_exportable(create_task("kgcoop+nemesis+dept", tiny_vit, ["red circle", "blue star"]))


# ------------------------------------------------------------------------------------------ TensorBoard
def _train_logged(tmp_path, cli_env, folder, *extra):
    args = ["train", "--method", "coop+nemesis+dept", "--dataset", "folder", "--data-root", str(folder), "--epochs",
            "2", "--batch-size", "8", "--set", "coop.n_ctx=2", "--eval-every", "1", "--log", "tensorboard", "-q"]  # fmt: skip
    return main([*args, "--out", str(tmp_path / "run"), *cli_env, *extra])


def test_tensorboard_scalars_per_epoch(tmp_path, cli_env, tiny_folder, monkeypatch):
    scalars, dirs = {}, []

    class FakeWriter:
        def __init__(self, log_dir):
            dirs.append(log_dir)

        def add_scalar(self, tag, value, step):
            scalars.setdefault(tag, []).append((step, value))

        def flush(self):
            pass

        def close(self):
            dirs.append("closed")

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    assert _train_logged(tmp_path, cli_env, tiny_folder) == 0
    assert dirs == [str(tmp_path / "run" / "tb"), "closed"]
    for tag in ("loss/total", "loss/ce", "loss/nemesis", "loss/dept", "train/lr", "train/accuracy", "dept/head_acc",
                "metrics/v0_norm", "metrics/matrix_norm"):  # fmt: skip
        assert [step for step, _ in scalars[tag]] == [1, 2], tag
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [v for _, v in scalars["loss/total"]] == pytest.approx([m["loss"] for m in metrics[:2]])
    final = json.loads((tmp_path / "run" / "results.json").read_text())
    assert scalars["test/accuracy"] == [(1, metrics[0]["test_accuracy"]), (2, metrics[1]["test_accuracy"]),
                                        (2, final["accuracy"])]  # fmt: skip


def test_tensorboard_missing_is_one_line_before_any_work(tmp_path, cli_env, tiny_folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert _train_logged(tmp_path, cli_env, tiny_folder) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --log tensorboard needs tensorboard: pip install 'vlprompt[tensorboard]'"
    assert not (tmp_path / "run").exists()


def test_tensorboard_event_files(tmp_path, cli_env, tiny_folder):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert _train_logged(tmp_path, cli_env, tiny_folder) == 0
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    assert {"loss/total", "train/lr", "metrics/v0_norm", "test/accuracy"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/lr")] == [1, 2]
