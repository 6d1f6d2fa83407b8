"""`vlprompt data verify` and `vlprompt data fewshot` through the console entry point, on real data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import vlprompt.cli as cli
from data_fixtures import (
    COOP_SPLITS,
    DTD10_IMAGES,
    benchmark_layout,
    published_split,
    shared_file,
    touch_all,
    write_json,
)

DTD10_CLASSES = 10


@pytest.fixture
def run(monkeypatch, capsys):
    """``vlprompt <args>`` -> (exit code, stdout, stderr), with only the data sub-command loaded."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["vlprompt.cli.data_cmd"])

    def invoke(*args):
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def dtd10_split(tmp_path):
    """The published DTD split restricted to the 10 classes whose real images are in ../shared/data."""
    shared_file(DTD10_IMAGES)
    published = published_split("dtd")
    subset = {s: [r for r in rows if r[1] < DTD10_CLASSES] for s, rows in published.items()}
    return write_json(tmp_path / "dtd10.json", subset)


@pytest.fixture
def dtd10_layout(tmp_path, dtd10_split):
    """``<root>/dtd/`` as the dtd reader expects, with the 10 real class folders linked in."""
    dataset_dir = tmp_path / "root" / "dtd"
    for cls in sorted(p.name for p in DTD10_IMAGES.iterdir()):
        (dataset_dir / "images").mkdir(parents=True, exist_ok=True)
        (dataset_dir / "images" / cls).symlink_to(DTD10_IMAGES / cls)
    (dataset_dir / "split_zhou_DescribableTextures.json").write_bytes(dtd10_split.read_bytes())
    return dataset_dir


def test_verify_real_dtd_images_with_a_split_file(run, dtd10_split):
    code, out, err = run(
        "data", "verify", "--dataset", "split", "--split-file", dtd10_split, "--data-root", DTD10_IMAGES
    )
    assert code == 0, err
    assert "split: 10 classes" in out
    assert [line.split()[:4] for line in out.splitlines()[1:]] == [
        ["train", "600", "images", "10"],
        ["val", "240", "images", "10"],
        ["test", "360", "images", "10"],
    ]


def test_verify_dtd_reader_reports_the_wrong_class_count(run, dtd10_layout):
    code, out, err = run("data", "verify", "--dataset", "dtd", "--data-root", dtd10_layout.parent)
    assert code == 2 and out == ""
    assert err.startswith("error: dtd: found 10 classes in ") and "expected 47" in err
    assert len(err.strip().splitlines()) == 1


def test_verify_reports_missing_images(run, dtd10_layout):
    split = dtd10_layout / "split_zhou_DescribableTextures.json"
    split.unlink()
    split.symlink_to(shared_file(COOP_SPLITS / split.name))  # all 47 classes, images for 10 of them
    code, _, err = run("data", "verify", "--dataset", "dtd", "--data-root", dtd10_layout.parent)
    assert code == 2
    assert "error: 4440 split entries are missing under" in err and "(e.g. " in err and "re-download" in err


def test_verify_missing_folder_and_split_file(run, tmp_path):
    code, _, err = run("data", "verify", "--dataset", "eurosat", "--data-root", tmp_path)
    assert code == 2 and f"eurosat dataset folder {tmp_path / 'eurosat'} not found; expected layout" in err
    touch_all(tmp_path / "food-101" / "images" / "pizza", ["1.jpg"])  # vlprompt ships no published Food101 split
    code, _, err = run("data", "verify", "--dataset", "food101", "--data-root", tmp_path)
    assert code == 2 and "split_zhou_Food101.json not found; first use will regenerate it" in err
    assert not (tmp_path / "food-101" / "split_zhou_Food101.json").exists()
    code, _, err = run("data", "verify", "--dataset", "split", "--data-root", tmp_path)
    assert code == 2 and "needs --split-file" in err


def test_verify_flat_imagenet_val(run, tmp_path):
    dataset_dir = tmp_path / "imagenet"
    (dataset_dir / "classnames.txt").parent.mkdir(parents=True)
    (dataset_dir / "classnames.txt").write_text("n01440764 tench\n")
    touch_all(dataset_dir / "images" / "train" / "n01440764", ["a.JPEG"])
    touch_all(dataset_dir / "images" / "val", ["ILSVRC2012_val_00000001.JPEG"])
    code, _, err = run("data", "verify", "--dataset", "imagenet", "--data-root", tmp_path)
    assert code == 2 and "valprep.sh" in err


def test_fewshot_writes_the_reference_sample(run, tmp_path):
    benchmark_layout(tmp_path, "dtd")
    out = tmp_path / "out" / "dtd_1shot.json"
    code, stdout, err = run(
        "data", "fewshot", "--dataset", "dtd", "--data-root", tmp_path, "--shots", 1, "--seed", 1, "--out", out
    )
    assert code == 0, err
    assert "wrote 47 train / 47 val images of 47 classes" in stdout
    written = json.loads(out.read_text())
    assert set(written) == {"train", "val"}
    assert written["train"][:2] == [["banded/banded_0117.jpg", 0, "banded"], ["blotchy/blotchy_0136.jpg", 1, "blotchy"]]
    assert written["val"][0] == ["banded/banded_0132.jpg", 0, "banded"]

    code, _, _ = run(
        "data",
        "fewshot",
        "--dataset",
        "dtd",
        "--data-root",
        tmp_path,
        "--shots",
        1,
        "--seed",
        1,
        "--subsample",
        "new",
        "--out",
        out,
    )
    new = json.loads(out.read_text())
    assert code == 0
    assert [r[0] for r in new["train"]] == [r[0] for r in written["train"][24:]]  # sampled before subsampling
    assert [r[1] for r in new["train"]] == list(range(23))  # relabelled


def test_fewshot_on_real_dtd_images_via_split_file(run, tmp_path, dtd10_split):
    out = tmp_path / "few.json"
    code, _, err = run(
        "data",
        "fewshot",
        "--dataset",
        "split",
        "--split-file",
        dtd10_split,
        "--data-root",
        DTD10_IMAGES,
        "--shots",
        4,
        "--seed",
        2,
        "--out",
        out,
    )
    assert code == 0, err
    written = json.loads(out.read_text())
    assert len(written["train"]) == 40 and len(written["val"]) == 40
    assert (tmp_path / "split_fewshot" / "dtd10" / "shot_4-seed_2.json").is_file()


def test_fewshot_errors(run, tmp_path):
    code, _, err = run(
        "data", "fewshot", "--dataset", "dtd", "--data-root", tmp_path, "--shots", 0, "--out", tmp_path / "x.json"
    )
    assert code == 2 and "--shots must be >= 1" in err
    code, _, err = run(
        "data", "fewshot", "--dataset", "nope", "--data-root", tmp_path, "--shots", 1, "--out", tmp_path / "x.json"
    )
    assert code == 2 and "unknown dataset 'nope' for --dataset" in err


def test_reading_splits_does_not_import_torch():
    """`vlprompt data` stays fast: only the image loader and transforms need torch."""
    code = "import sys, vlprompt.data, vlprompt.data.verify; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_data_without_a_subcommand_prints_help(run):
    code, out, _ = run("data")
    assert code == 2 and "verify" in out and "fewshot" in out
