"""Every dataset reader on a generated copy of its real layout, split regeneration, and reader errors."""

from __future__ import annotations

import json
import logging
import re
import sys

import numpy as np
import pytest

from data_fixtures import (
    COOP_SPLITS,
    FOLDERS,
    SHARED_SPLIT_FILES,
    benchmark_layout,
    published_split,
    relpaths,
    shared_file,
    touch_all,
    write_json,
    write_lines,
)
from vlprompt.data import DATASETS, build_dataset, read_dataset
from vlprompt.data.templates import IMAGENET_TEMPLATES_SELECT, ensemble_templates
from vlprompt.errors import VLPromptError

BENCHMARKS = [
    "caltech101",
    "oxford_pets",
    "stanford_cars",
    "oxford_flowers",
    "food101",
    "fgvc_aircraft",
    "sun397",
    "dtd",
    "eurosat",
    "ucf101",
    "imagenet",
    "imagenetv2",
    "imagenet_sketch",
    "imagenet_a",
    "imagenet_r",
]


def test_every_benchmark_and_custom_reader_is_registered():
    assert set(BENCHMARKS) | {"folder", "split"} <= set(DATASETS.names())


def split_json(rows_by_split):
    return {s: [[rel, label, name] for rel, label, name in rows] for s, rows in rows_by_split.items()}


# ---------------------------------------------------------------- split-file benchmarks, split present


def test_split_file_benchmark_reads_the_split_in_file_order(tmp_path):
    rows = {
        "train": [("b/2.jpg", 1, "b_x"), ("a/1.jpg", 0, "a")],
        "val": [("a/3.jpg", 0, "a")],
        "test": [("b/4.jpg", 1, "b_x")],
    }
    write_json(tmp_path / "oxford_pets" / "split_zhou_OxfordPets.json", split_json(rows))
    (tmp_path / "oxford_pets" / "images").mkdir()
    ds = read_dataset("oxford_pets", tmp_path, strict=False)
    assert relpaths(ds.train) == ["b/2.jpg", "a/1.jpg"]
    assert ds.classnames == ["a", "b x"] and ds.train[0].classname == "b_x"
    assert ds.train[0].impath == str(tmp_path / "oxford_pets" / "images" / "b" / "2.jpg")
    assert ds.template == "a photo of a {}, a type of pet." and ds.kgcoop_template == ds.template
    assert ds.fewshot_dir == tmp_path / "oxford_pets" / "split_fewshot"
    with pytest.raises(VLPromptError, match=r"found 2 classes .* expected 37"):
        read_dataset("oxford_pets", tmp_path)


@pytest.mark.parametrize(
    "name,classes,template",
    [
        ("dtd", 47, "{} texture."),
        ("eurosat", 10, "a centered satellite photo of {}."),
        ("caltech101", 100, "a photo of a {}."),
        ("oxford_flowers", 102, "a photo of a {}, a type of flower."),
        ("ucf101", 101, "a photo of a person doing {}."),
        ("stanford_cars", 196, "a photo of a {}."),
        ("oxford_pets", 37, "a photo of a {}, a type of pet."),
    ],
)
def test_published_splits_read_with_their_class_names_and_templates(tmp_path, name, classes, template):
    benchmark_layout(tmp_path, name)
    ds = read_dataset(name, tmp_path)
    published = published_split(name)
    assert ds.num_classes == classes and ds.template == template
    assert [len(ds.train), len(ds.val), len(ds.test)] == [len(published[s]) for s in ("train", "val", "test")]
    assert [[d.relpath, d.label, d.classname] for d in ds.test] == published["test"]
    assert ensemble_templates(ds) == IMAGENET_TEMPLATES_SELECT + [template]
    if name == "dtd":
        assert ds.kgcoop_template == "a photo of a {}, a type of texture."
    if name == "eurosat":
        assert "Annual Crop Land" in ds.classnames and "Sea or Lake" in ds.classnames
    if name == "ucf101":
        assert ds.classnames[0] == "Apply Eye Makeup"
    if name == "caltech101":
        assert {"face", "leopard", "motorbike", "airplane"} <= set(ds.classnames)


def test_user_split_file_overrides_the_benchmark_split(tmp_path):
    benchmark_layout(tmp_path, "dtd")
    own = write_json(
        tmp_path / "mine" / "dtd_subset.json",
        {
            "train": [["banded/banded_0001.jpg", 0, "banded"]],
            "val": [],
            "test": [["banded/banded_0002.jpg", 0, "banded"]],
        },
    )
    ds = read_dataset("dtd", tmp_path, split_file=own, strict=False)
    assert len(ds.train) == 1 and ds.image_dir == tmp_path / "dtd" / "images"
    assert ds.fewshot_dir == tmp_path / "mine" / "split_fewshot" / "dtd_subset"
    with pytest.raises(VLPromptError, match="--split-file .* not found"):
        read_dataset("dtd", tmp_path, split_file=tmp_path / "nope.json")


# ---------------------------------------------------------------- regeneration of a missing split file


def test_dtd_style_regeneration_writes_the_split_and_logs_once(tmp_path, caplog):
    images = tmp_path / "eurosat" / "2750"
    for cls in ("AnnualCrop", "Forest", "SeaLake"):
        touch_all(images / cls, [f"{cls}_{i}.jpg" for i in range(10)])
    with caplog.at_level(logging.WARNING, logger="vlprompt.data"):
        ds = read_dataset("eurosat", tmp_path, strict=False, published=False)
    assert caplog.text.count("regenerated") == 1
    written = tmp_path / "eurosat" / "split_zhou_EuroSAT.json"
    assert json.loads(written.read_text())["train"][0][2] == "Annual Crop Land"
    assert ds.classnames == ["Annual Crop Land", "Forest", "Sea or Lake"]
    assert [len(ds.train), len(ds.val), len(ds.test)] == [15, 6, 9]  # 5 / 2 / 3 per class
    assert relpaths(read_dataset("eurosat", tmp_path, strict=False, published=False).train) == relpaths(ds.train)
    written.unlink()
    assert relpaths(read_dataset("eurosat", tmp_path, strict=False, published=False).train) == relpaths(
        ds.train
    )  # deterministic


def test_regenerated_split_is_kept_in_memory_when_the_folder_is_read_only(tmp_path, monkeypatch, caplog):
    import vlprompt.data.benchmarks as benchmarks

    def refuse(path, text):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(benchmarks, "write_text", refuse)
    touch_all(tmp_path / "dtd" / "images" / "banded", [f"banded_{i}.jpg" for i in range(10)])
    with caplog.at_level(logging.WARNING, logger="vlprompt.data"):
        ds = read_dataset("dtd", tmp_path, strict=False, published=False)
    assert [len(ds.train), len(ds.val), len(ds.test)] == [5, 2, 3]
    assert "could not save it (Permission denied)" in caplog.text
    assert not (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").exists()


def test_mat_files_need_scipy_only_to_regenerate(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.io", None)  # as if scipy were not installed
    benchmark_layout(tmp_path, "oxford_flowers")
    assert read_dataset("oxford_flowers", tmp_path).num_classes == 102
    (tmp_path / "oxford_flowers" / "split_zhou_OxfordFlowers.json").unlink()
    (tmp_path / "oxford_flowers" / "imagelabels.mat").touch()
    (tmp_path / "oxford_flowers" / "cat_to_name.json").write_text("{}")
    with pytest.raises(VLPromptError, match=r"imagelabels.mat needs scipy \(pip install scipy\)"):
        read_dataset("oxford_flowers", tmp_path, published=False)


def test_caltech_regeneration_drops_ignored_folders_and_renames(tmp_path):
    images = tmp_path / "caltech-101" / "101_ObjectCategories"
    for cls in ("BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "accordion"):
        touch_all(images / cls, [f"image_{i:04d}.jpg" for i in range(1, 6)])
    ds = read_dataset("caltech101", tmp_path, strict=False, published=False)
    assert ds.classnames == ["face", "leopard", "accordion"]
    with pytest.raises(VLPromptError, match="too few"):
        touch_all(images / "tiny", ["a.jpg", "b.jpg"])
        (tmp_path / "caltech-101" / "split_zhou_Caltech101.json").unlink()
        read_dataset("caltech101", tmp_path, strict=False, published=False)


def test_verify_mode_refuses_to_regenerate_and_names_the_file(tmp_path):
    touch_all(tmp_path / "dtd" / "images" / "banded", [f"{i}.jpg" for i in range(5)])
    with pytest.raises(
        VLPromptError,
        match=r"split_zhou_DescribableTextures.json not found; first use will "
        r"regenerate it .* download",
    ):
        read_dataset("dtd", tmp_path, regenerate=False, published=False)
    assert not (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").exists()


def test_missing_split_without_regeneration_sources_is_an_error(tmp_path):
    (tmp_path / "oxford_pets" / "images").mkdir(parents=True)
    with pytest.raises(
        VLPromptError,
        match=r"cannot be regenerated because .*annotations/trainval.txt is missing; "
        r"download split_zhou_OxfordPets.json",
    ):
        read_dataset("oxford_pets", tmp_path, published=False)


def test_pets_regeneration_from_annotation_lists(tmp_path):
    dataset_dir = tmp_path / "oxford_pets"
    (dataset_dir / "images").mkdir(parents=True)
    trainval = [f"Abyssinian_{i} 1 1 1" for i in range(1, 11)] + [f"great_pyrenees_{i} 2 2 1" for i in range(1, 11)]
    write_lines(dataset_dir / "annotations" / "trainval.txt", trainval)
    write_lines(dataset_dir / "annotations" / "test.txt", ["Abyssinian_50 1 1 1", "great_pyrenees_50 2 2 1"])
    ds = read_dataset("oxford_pets", tmp_path, strict=False, published=False)
    assert ds.classnames == ["abyssinian", "great pyrenees"]
    assert [len(ds.train), len(ds.val), len(ds.test)] == [16, 4, 2]
    assert relpaths(ds.test) == ["Abyssinian_50.jpg", "great_pyrenees_50.jpg"]


def test_a_missing_split_file_is_the_shipped_published_split(tmp_path, caplog):
    published = published_split("dtd")
    touch_all(tmp_path / "dtd" / "images" / "banded", [f"banded_{i}.jpg" for i in range(10)])
    with caplog.at_level(logging.INFO, logger="vlprompt.data"):
        ds = read_dataset("dtd", tmp_path, regenerate=False)
    assert "not found; using the published CoOp split shipped with vlprompt" in caplog.text
    assert [[d.relpath, d.label, d.classname] for d in ds.train] == published["train"]
    assert (len(ds.val), len(ds.test), ds.num_classes) == (len(published["val"]), len(published["test"]), 47)
    assert not (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").exists()  # nothing is written
    assert ds.fewshot_dir == tmp_path / "dtd" / "split_fewshot"


def test_sun397_regeneration_names(tmp_path):
    dataset_dir = tmp_path / "sun397"
    (dataset_dir / "SUN397").mkdir(parents=True)
    classes = ["/a/airport_terminal", "/b/bakery/shop"]
    write_lines(dataset_dir / "ClassName.txt", classes)
    write_lines(dataset_dir / "Training_01.txt", [f"{c}/sun_{i}.jpg" for c in classes for i in range(5)])
    write_lines(dataset_dir / "Testing_01.txt", [f"{c}/sun_t{i}.jpg" for c in classes for i in range(2)])
    ds = read_dataset("sun397", tmp_path, strict=False)
    assert ds.classnames == ["airport terminal", "shop bakery"]
    assert ds.test[0].relpath == "a/airport_terminal/sun_t0.jpg"
    assert [len(ds.train), len(ds.val)] == [8, 2]


# The next three tests rebuild a dataset's official annotation files from its published split; regenerating
# the split from them (seed 1) must give the published file back exactly.


def assert_regenerates_published(root, name, published):
    read_dataset(name, root, published=False)
    dataset_dir = root / FOLDERS[name][0]
    assert json.loads((dataset_dir / SHARED_SPLIT_FILES[name]).read_text()) == published


@pytest.fixture
def savemat():
    return pytest.importorskip("scipy.io").savemat


def test_ucf101_regeneration_reproduces_the_published_split(tmp_path):
    published = published_split("ucf101")
    dataset_dir = tmp_path / "ucf101"
    (dataset_dir / "UCF-101-midframes").mkdir(parents=True)

    def official(row):
        folder, fname = row[0].split("/")
        return f"{folder.replace('_', '')}/{fname.replace('.jpg', '.avi')}"

    actions = {row[1]: official(row).split("/")[0] for row in published["test"]}
    write_lines(dataset_dir / "ucfTrainTestlist" / "classInd.txt", [f"{i + 1} {actions[i]}" for i in sorted(actions)])
    trainval = sorted(published["train"] + published["val"], key=lambda r: (r[1], r[0]))
    write_lines(dataset_dir / "ucfTrainTestlist" / "trainlist01.txt", [f"{official(r)} {r[1] + 1}" for r in trainval])
    write_lines(dataset_dir / "ucfTrainTestlist" / "testlist01.txt", [official(r) for r in published["test"]])
    assert_regenerates_published(tmp_path, "ucf101", published)


def test_stanford_cars_regeneration_reproduces_the_published_split(tmp_path, savemat):
    published = published_split("stanford_cars")
    dataset_dir = tmp_path / "stanford_cars"
    names = {}
    for _, label, name in published["test"]:
        year, *words = name.split(" ")
        names[label] = " ".join([*words, year])  # the devkit puts the year last
    meta = np.empty((1, len(names)), dtype=object)
    for label, name in names.items():
        meta[0, label] = np.array([name])

    def annotations(rows):
        records = np.empty((1, len(rows)), dtype=[("fname", object), ("class", object)])
        for i, (rel, label, _) in enumerate(rows):
            records[0, i] = (np.array([rel.split("/")[1]]), np.array([[label + 1]], dtype=np.uint8))
        return {"annotations": records}

    (dataset_dir / "devkit").mkdir(parents=True)
    savemat(dataset_dir / "devkit" / "cars_meta.mat", {"class_names": meta})
    trainval = sorted(published["train"] + published["val"])  # the devkit lists 00001.jpg, 00002.jpg, ...
    savemat(dataset_dir / "devkit" / "cars_train_annos.mat", annotations(trainval))
    savemat(dataset_dir / "cars_test_annos_withlabels.mat", annotations(published["test"]))
    assert_regenerates_published(tmp_path, "stanford_cars", published)


def test_oxford_flowers_regeneration_reproduces_the_published_split(tmp_path, savemat):
    published = published_split("oxford_flowers")
    dataset_dir = tmp_path / "oxford_flowers"
    (dataset_dir / "jpg").mkdir(parents=True)
    label_of = {int(rel[6:11]): label for s in published.values() for rel, label, _ in s}
    labels = np.array([[label_of[i] + 1 for i in range(1, len(label_of) + 1)]], dtype=np.uint8)
    savemat(dataset_dir / "imagelabels.mat", {"labels": labels})
    (dataset_dir / "cat_to_name.json").write_bytes(shared_file(COOP_SPLITS / "cat_to_name.json").read_bytes())
    assert_regenerates_published(tmp_path, "oxford_flowers", published)


# ---------------------------------------------------------------- FGVC-Aircraft


def test_fgvc_aircraft_reads_the_official_lists(tmp_path):
    dataset_dir = tmp_path / "fgvc_aircraft"
    (dataset_dir / "images").mkdir(parents=True)
    write_lines(dataset_dir / "variants.txt", ["707-320", "A300B4", "F-16A/B"])
    write_lines(dataset_dir / "images_variant_train.txt", ["1025794 707-320", "1340192 F-16A/B"])
    write_lines(dataset_dir / "images_variant_val.txt", ["0056978 A300B4"])
    write_lines(dataset_dir / "images_variant_test.txt", ["1514522 F-16A/B"])
    ds = read_dataset("fgvc_aircraft", tmp_path, strict=False)
    assert ds.classnames == ["707-320", "A300B4", "F-16A/B"]
    assert [(d.relpath, d.label) for d in ds.train] == [("1025794.jpg", 0), ("1340192.jpg", 2)]
    assert ds.template == "a photo of a {}, a type of aircraft." and len(ds.val) == len(ds.test) == 1
    write_lines(dataset_dir / "images_variant_test.txt", ["1514522 Concorde"])
    with pytest.raises(VLPromptError, match="variant 'Concorde'"):
        read_dataset("fgvc_aircraft", tmp_path, strict=False)
    with pytest.raises(VLPromptError, match="--split-file does not apply"):
        read_dataset("fgvc_aircraft", tmp_path, split_file=tmp_path / "x.json")


# ---------------------------------------------------------------- ImageNet family


def wnids(n):
    return [f"n{i:08d}" for i in range(n)]


def imagenet_layout(root, classes, val_flat=False):
    dataset_dir = root / "imagenet"
    write_lines(dataset_dir / "classnames.txt", [f"{w} class_{i} name" for i, w in enumerate(wnids(5))])
    for w in classes:
        touch_all(dataset_dir / "images" / "train" / w, [f"{w}_1.JPEG", f"{w}_2.JPEG", f"{w}_3.JPEG"])
        if not val_flat:
            touch_all(dataset_dir / "images" / "val" / w, [f"ILSVRC2012_val_{w}.JPEG"])
    if val_flat:
        touch_all(dataset_dir / "images" / "val", [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(3)])
    return dataset_dir


def test_imagenet_labels_follow_sorted_wnids_and_test_is_val(tmp_path):
    imagenet_layout(tmp_path, ["n00000003", "n00000000", "n00000001"])
    ds = read_dataset("imagenet", tmp_path, strict=False)
    assert ds.classnames == ["class 0 name", "class 1 name", "class 3 name"]
    assert ds.train[0].relpath == "train/n00000000/n00000000_1.JPEG" and ds.train[-1].label == 2
    assert relpaths(ds.test) == [f"val/{w}/ILSVRC2012_val_{w}.JPEG" for w in ("n00000000", "n00000001", "n00000003")]
    assert ds.val == [] and ensemble_templates(ds) == IMAGENET_TEMPLATES_SELECT
    with pytest.raises(VLPromptError, match="found 3 classes .* expected 1000"):
        read_dataset("imagenet", tmp_path)
    assert len(build_dataset("imagenet", tmp_path, shots=2, seed=1, strict=False).train) == 6


def test_flat_imagenet_val_is_detected_with_the_fix(tmp_path):
    imagenet_layout(tmp_path, ["n00000000"], val_flat=True)
    with pytest.raises(VLPromptError, match=r"holds 3 images directly .* valprep.sh"):
        read_dataset("imagenet", tmp_path, strict=False)


def test_imagenet_class_folder_missing_from_classnames(tmp_path):
    imagenet_layout(tmp_path, ["n00000000", "n99999999"])
    with pytest.raises(VLPromptError, match="'n99999999' .* not listed in .*classnames.txt"):
        read_dataset("imagenet", tmp_path, strict=False)


def test_imagenet_a_relabels_200_classes_and_records_imagenet_rows(tmp_path):
    dataset_dir = tmp_path / "imagenet-adversarial"
    all_wnids = wnids(1000)
    write_lines(dataset_dir / "classnames.txt", [f"{w} name {i}" for i, w in enumerate(all_wnids)][::-1])
    present = all_wnids[::5]
    for w in present:
        touch_all(dataset_dir / "imagenet-a" / w, ["0.jpg"])
    (dataset_dir / "imagenet-a" / "README.txt").write_text("ignored")
    ds = read_dataset("imagenet_a", tmp_path)
    assert ds.num_classes == 200 and ds.train == [] and ds.val == []
    assert [d.label for d in ds.test] == list(range(200))
    assert ds.extra["imagenet_rows"] == list(range(0, 1000, 5))
    assert ds.classnames[:2] == ["name 0", "name 5"]
    new = build_dataset("imagenet_a", tmp_path, subsample="new", shots=16)
    assert new.num_classes == 100 and new.extra["imagenet_rows"][0] == 500


def test_imagenet_r_and_sketch_read_wnid_folders(tmp_path):
    for folder, images, name in (
        ("imagenet-rendition", "imagenet-r", "imagenet_r"),
        ("imagenet-sketch", "images", "imagenet_sketch"),
    ):
        write_lines(tmp_path / folder / "classnames.txt", [f"{w} name_{w}" for w in wnids(5)])
        for w in wnids(5)[1:3]:
            touch_all(tmp_path / folder / images / w, ["a.jpg", "b.png"])
        ds = read_dataset(name, tmp_path, strict=False)
        assert ds.classnames == ["name n00000001", "name n00000002"] and len(ds.test) == 4
        with pytest.raises(VLPromptError, match="expected"):
            read_dataset(name, tmp_path)


def test_imagenetv2_maps_folder_index_to_classnames_line(tmp_path):
    dataset_dir = tmp_path / "imagenetv2"
    write_lines(dataset_dir / "classnames.txt", ["n00000009 zebra", "n00000001 apple"])
    for i in range(2):
        touch_all(dataset_dir / "imagenetv2-matched-frequency-format-val" / str(i), [f"{i}.jpeg"])
    ds = read_dataset("imagenetv2", tmp_path, strict=False)
    assert ds.classnames == ["zebra", "apple"] and [(d.relpath, d.label) for d in ds.test] == [
        ("0/0.jpeg", 0),
        ("1/1.jpeg", 1),
    ]
    write_lines(dataset_dir / "classnames.txt", ["n00000009 zebra", "n00000001 apple", "n00000002 pear"])
    with pytest.raises(VLPromptError, match=r"class folder .*2 not found"):
        read_dataset("imagenetv2", tmp_path, strict=False)


# ---------------------------------------------------------------- custom datasets


def test_folder_dataset(tmp_path):
    touch_all(tmp_path / "train" / "red_fox", ["1.jpg", "2.png", "notes.txt", ".hidden.jpg"])
    touch_all(tmp_path / "train" / "cat", ["1.jpg"])
    touch_all(tmp_path / "test" / "cat", ["9.jpg"])
    touch_all(tmp_path / "test" / "zebra", ["8.JPG"])
    ds = read_dataset("folder", tmp_path)
    assert ds.classnames == ["cat", "red fox", "zebra"]
    assert [(d.relpath, d.label) for d in ds.train] == [
        ("train/cat/1.jpg", 0),
        ("train/red_fox/1.jpg", 1),
        ("train/red_fox/2.png", 1),
    ]
    assert [(d.relpath, d.label) for d in ds.test] == [("test/cat/9.jpg", 0), ("test/zebra/8.JPG", 2)]
    assert ds.val == [] and ds.fewshot_dir == tmp_path / "split_fewshot"
    base = build_dataset("folder", tmp_path, shots=1, subsample="base")
    assert base.classnames == ["cat"] and len(base.train) == 1
    assert (tmp_path / "split_fewshot" / "shot_1-seed_1.json").is_file()


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(VLPromptError, match="needs --data-root"):
        read_dataset("folder", None)
    touch_all(tmp_path / "train" / "cat", ["1.jpg"])
    with pytest.raises(VLPromptError, match=r"test folder .* not found; expected layout"):
        read_dataset("folder", tmp_path)
    with pytest.raises(VLPromptError, match="use --dataset split|does not apply"):
        read_dataset("folder", tmp_path, split_file=tmp_path / "s.json")


def test_split_dataset(tmp_path):
    split = write_json(
        tmp_path / "splits" / "pets_a.json",
        {
            "train": [["x/1.jpg", 1, "golden_retriever"], ["x/2.jpg", 0, "cat"]],
            "test": [["x/3.jpg", 1, "golden_retriever"]],
        },
    )
    ds = read_dataset("split", tmp_path, split_file=split)
    assert ds.classnames == ["cat", "golden retriever"] and ds.val == [] and ds.image_dir == tmp_path
    assert ds.fewshot_dir == tmp_path / "splits" / "split_fewshot" / "pets_a"
    assert read_dataset("split", None, split_file=split).image_dir == tmp_path / "splits"


@pytest.mark.parametrize(
    "content,message",
    [
        ({"train": []}, "has no test list"),
        ({"test": [["a.jpg", 0]]}, r"test\[0\] .* is not \[relpath, label >= 0, classname\]"),
        ({"test": [["a.jpg", 0, "a"], ["b.jpg", 0, "b"]]}, "label 0 is named both"),
        ({"test": [["a.jpg", 0, "a"], ["b.jpg", 2, "b"]]}, "label 1 has no image"),
        ([1, 2], "must hold a JSON object"),
    ],
)
def test_split_dataset_rejects_bad_files(tmp_path, content, message):
    split = write_json(tmp_path / "bad.json", content)
    with pytest.raises(VLPromptError, match=message):
        read_dataset("split", tmp_path, split_file=split)


def test_split_dataset_needs_a_split_file(tmp_path):
    with pytest.raises(VLPromptError, match="needs --split-file"):
        read_dataset("split", tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(VLPromptError, match="cannot read split file .*broken.json"):
        read_dataset("split", tmp_path, split_file=tmp_path / "broken.json")


def test_missing_dataset_folder_names_the_path_and_layout(tmp_path):
    with pytest.raises(
        VLPromptError,
        match=re.escape(str(tmp_path / "dtd")) + r" not found; expected layout: "
        r".*split_zhou_DescribableTextures.json \(see CoOp's DATASETS.md\)",
    ):
        read_dataset("dtd", tmp_path)
    with pytest.raises(VLPromptError, match="unknown dataset 'nope'"):
        read_dataset("nope", tmp_path)
