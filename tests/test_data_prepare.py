"""`vlprompt data prepare`: archives served by a local HTTP server (or given with --from) become the CoOp layout that
`vlprompt data verify` and a zero-shot run read; resumable downloads, checksums, atomicity, the shipped files."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from data_fixtures import COOP_SPLITS, shared_file
from upstream_archives import UPSTREAM, ArchiveServer, dtd, jpeg, tar, ucf101_lists, ucf101_videos, write_files
from vlprompt.cli import main
from vlprompt.data import prepare as prepare_module
from vlprompt.data import published
from vlprompt.data.published import SHA256, sha256, shipped
from vlprompt.data.recipes import RECIPES

SLOW = {"imagenet", "imagenetv2", "imagenet_sketch", "sun397"}


def serve_from(monkeypatch, server: ArchiveServer, name: str, files, *, checksums: bool = True) -> None:
    """Point ``name``'s recipe at the local server (with the synthetic archives' MD5s when ``checksums``)."""
    recipe = RECIPES[name]
    resources = tuple(
        dataclasses.replace(
            r,
            url=server.url(r.filename),
            md5=hashlib.md5(files[r.filename]).hexdigest() if checksums else r.md5,
        )
        for r in recipe.resources
    )
    monkeypatch.setitem(RECIPES, name, dataclasses.replace(recipe, resources=resources))


@pytest.fixture
def regenerated_splits(monkeypatch):
    """The synthetic archives hold a few images per class, not the images the published splits list: prepare
    regenerates the split, as for a dataset whose CoOp split is not public (the shipped splits are left out)."""
    for name in [n for n in SHA256 if n.startswith("split_zhou_")]:
        monkeypatch.delitem(SHA256, name)


def zeroshot(tmp_path, root: Path, name: str, capsys) -> dict:
    out = tmp_path / f"zs-{name}"
    assert main(["zeroshot", "--dataset", name, "--data-root", str(root), "--backbone", "toy", "--out", str(out)]) == 0
    return json.loads((out / "results.json").read_text())


def prepare_verify_zeroshot(tmp_path, root, name, argv, capsys) -> None:
    assert main(["data", "prepare", name, "--data-root", str(root), *argv]) == 0
    table = capsys.readouterr().out
    assert f"{name} " in table and "prepared" in table
    assert main(["data", "verify", "--dataset", name, "--data-root", str(root)]) == 0
    report = capsys.readouterr().out
    assert "classes" in report
    assert not (root / prepare_module.STAGING).exists()
    res = zeroshot(tmp_path, root, name, capsys)
    assert res["dataset"] == name and res["num_images"] > 0


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in UPSTREAM])
def test_download_prepare_verify_zeroshot(name, tmp_path, monkeypatch, capsys, regenerated_splits):
    """The synthetic archives do not hold the images the published split lists: prepare regenerates it; Oxford
    Flowers' regeneration reads the (here synthetic) published ``cat_to_name.json``."""
    pytest.importorskip("scipy")
    files = UPSTREAM[name]()
    if name == "oxford_flowers":
        names = json.dumps({str(i): f"flower {i}" for i in range(1, 103)}).encode()
        real = published.published
        monkeypatch.setattr(published, "published", lambda n: names if n == "cat_to_name.json" else real(n))
    root = tmp_path / "data"
    with ArchiveServer(files) as server:
        serve_from(monkeypatch, server, name, files)
        prepare_verify_zeroshot(tmp_path, root, name, ["--download"], capsys)
    # a finished prepare is a no-op (and needs no network: the server is gone)
    assert main(["data", "prepare", name, "--data-root", str(root), "--download"]) == 0
    assert "already prepared" in capsys.readouterr().out


@pytest.mark.slow
def test_ucf101_middle_frames_from_extracted_videos(tmp_path, monkeypatch, capsys, regenerated_splits):
    """UCF101.rar cannot be written here: --from a folder with the extracted UCF-101/ and the split-list zip."""
    pytest.importorskip("av")
    source = write_files(tmp_path / "have", ucf101_lists())
    for rel, data in ucf101_videos().items():
        write_files((source / rel).parent, {Path(rel).name: data})
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    root = tmp_path / "data"
    prepare_verify_zeroshot(tmp_path, root, "ucf101", ["--from", str(source), "--workers", "2"], capsys)
    frame = root / "ucf101" / "UCF-101-midframes" / "Action_A_A_Move" / "v_ActionAAMove_g01_c01.jpg"
    from PIL import Image

    grey = Image.open(frame).convert("L").getpixel((8, 8))
    assert abs(grey - 80) <= 6  # frame 2 of 5 (grey 40 * 2 + label 0), not frame 0 or 4
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before  # the user's files are untouched


def test_from_a_folder_of_archives_needs_no_network(tmp_path, monkeypatch, capsys, regenerated_splits):
    files = UPSTREAM["oxford_pets"]()
    serve_from(monkeypatch, ArchiveServer({}), "oxford_pets", files)  # never started: any download would fail
    source = write_files(tmp_path / "archives", files)
    prepare_verify_zeroshot(tmp_path, tmp_path / "data", "oxford_pets", ["--from", str(source)], capsys)
    assert sorted(p.name for p in source.iterdir()) == sorted(files)


def test_from_a_single_archive_file(tmp_path, monkeypatch, capsys, regenerated_splits):
    files = dtd()
    serve_from(monkeypatch, ArchiveServer({}), "dtd", files)
    source = write_files(tmp_path / "archives", files) / "dtd-r1.0.1.tar.gz"
    prepare_verify_zeroshot(tmp_path, tmp_path / "data", "dtd", ["--from", str(source)], capsys)


def test_interrupted_download_resumes_with_a_range_request(tmp_path, monkeypatch, capsys, regenerated_splits):
    files = dtd()
    root = tmp_path / "data"
    size = len(files["dtd-r1.0.1.tar.gz"])
    with ArchiveServer(files) as server:
        serve_from(monkeypatch, server, "dtd", files)
        server.cut["dtd-r1.0.1.tar.gz"] = size // 2
        assert main(["data", "prepare", "dtd", "--data-root", str(root), "--download"]) == 2
        err = capsys.readouterr().err
        assert f"stopped at {size // 2} of {size} bytes; run the same command again to resume" in err
        part = root / prepare_module.STAGING / "downloads" / "dtd-r1.0.1.tar.gz.part"
        assert part.stat().st_size == size // 2 and not (root / "dtd").exists()
        assert main(["data", "prepare", "dtd", "--data-root", str(root), "--download"]) == 0
        assert server.requests == [("dtd-r1.0.1.tar.gz", None), ("dtd-r1.0.1.tar.gz", f"bytes={size // 2}-")]
    assert (root / "dtd" / "images").is_dir() and not (root / prepare_module.STAGING).exists()


def test_a_prepare_killed_while_extracting_is_redone(tmp_path, monkeypatch, capsys, regenerated_splits):
    files = dtd()
    root = tmp_path / "data"
    stale = root / prepare_module.STAGING / "dtd" / "dtd" / "images" / "half"
    stale.mkdir(parents=True)
    (stale / "cut.jpg").write_bytes(b"\xff\xd8")  # what a killed run left behind
    serve_from(monkeypatch, ArchiveServer({}), "dtd", files)
    source = write_files(tmp_path / "archives", files)
    assert main(["data", "prepare", "dtd", "--data-root", str(root), "--from", str(source)]) == 0
    assert sorted(p.name for p in (root / "dtd" / "images").iterdir()) == [f"texture{k:02d}" for k in range(47)]
    assert sorted(p.name for p in root.iterdir()) == ["dtd"]


def test_wrong_checksum_is_refused_and_nothing_is_left(tmp_path, monkeypatch, capsys):
    files = dtd()
    root = tmp_path / "data"
    with ArchiveServer(files) as server:
        serve_from(monkeypatch, server, "dtd", files, checksums=False)  # the real DTD MD5
        assert main(["data", "prepare", "dtd", "--data-root", str(root), "--download"]) == 2
    err = capsys.readouterr().err.strip()
    got = hashlib.md5(files["dtd-r1.0.1.tar.gz"]).hexdigest()
    assert err == (
        f"error: download of {server.url('dtd-r1.0.1.tar.gz')}: MD5 {got} != expected "
        f"fff73e5086ae6bdbea199a49dfb8a4c1; the file is damaged or another version (delete it and download it again)"
    )
    assert list(root.iterdir()) == []


def test_wrong_checksum_of_a_from_file_is_refused(tmp_path, capsys):
    source = write_files(tmp_path / "archives", dtd())
    root = tmp_path / "data"
    assert main(["data", "prepare", "dtd", "--data-root", str(root), "--from", str(source)]) == 2
    err = capsys.readouterr().err
    assert f"error: --from {source / 'dtd-r1.0.1.tar.gz'}: MD5 " in err and "expected fff73e5086ae" in err
    assert list(root.iterdir()) == []


def test_a_host_that_is_gone_names_the_url_and_the_manual_way(tmp_path, monkeypatch, capsys):
    with ArchiveServer({}) as server:
        serve_from(monkeypatch, server, "stanford_cars", {r.filename: b"" for r in RECIPES["stanford_cars"].resources})
        assert main(["data", "prepare", "stanford_cars", "--data-root", str(tmp_path), "--download"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot download {server.url('cars_train.tgz')}: HTTP 404 ")
    assert err.endswith("the original Stanford Cars host is gone: get cars_train.tgz, cars_test.tgz, car_devkit.tgz "
                        "and cars_test_annos_withlabels.mat from a mirror (e.g. the Kaggle copy named in CoOp's "
                        "DATASETS.md) and pass --from FOLDER")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_imagenet_cannot_be_downloaded(tmp_path, capsys):
    assert main(["data", "prepare", "imagenet", "--data-root", str(tmp_path), "--download"]) == 2
    assert "error: ILSVRC2012_img_train.tar cannot be downloaded; ImageNet needs an account" in capsys.readouterr().err


def test_a_users_dataset_folder_is_never_touched(tmp_path, monkeypatch, capsys):
    files = dtd()
    user = tmp_path / "data" / "dtd"
    (user / "images").mkdir(parents=True)
    (user / "mine.txt").write_text("my notes")
    with ArchiveServer(files) as server:
        serve_from(monkeypatch, server, "dtd", files)
        assert main(["data", "prepare", "dtd", "--data-root", str(tmp_path / "data"), "--download"]) == 2
        assert server.requests == []
    assert (
        "already exists and was not written by `vlprompt data prepare`; nothing was changed" in capsys.readouterr().err
    )
    assert (
        sorted(p.name for p in user.iterdir()) == ["images", "mine.txt"]
        and (user / "mine.txt").read_text() == "my notes"
    )
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["dtd"]


def dtd_with_every_published_image(tmp_path) -> tuple:
    """The published DTD split (from ../shared) and a DTD archive holding every image it lists (tiny stand-ins)."""
    data = shared_file(COOP_SPLITS / "split_zhou_DescribableTextures.json").read_bytes()
    rows = json.loads(data)
    archive = tar({f"dtd/images/{r[0]}": jpeg(r[1]) for s in ("train", "val", "test") for r in rows[s]})
    return data, {"dtd-r1.0.1.tar.gz": archive}


@pytest.mark.parametrize("how", ["download", "from"])
def test_prepare_writes_the_shipped_published_split(how, tmp_path, monkeypatch, capsys):
    """The published split is the copy shipped in the package, byte for byte CoOp's file, downloaded archives or
    --from alike, offline; verify says it is the published one."""
    split_bytes, files = dtd_with_every_published_image(tmp_path)
    root = tmp_path / "data"
    name = "split_zhou_DescribableTextures.json"
    if how == "download":
        with ArchiveServer(files) as server:
            serve_from(monkeypatch, server, "dtd", files)
            assert main(["data", "prepare", "dtd", "--data-root", str(root), "--download"]) == 0
    else:  # offline: the archives a user has
        serve_from(monkeypatch, ArchiveServer({}), "dtd", files)  # the synthetic archive's MD5
        source = write_files(tmp_path / "archives", files)
        assert main(["data", "prepare", "dtd", "--data-root", str(root), "--from", str(source)]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == [
        "dtd",
        "2820",
        "1128",
        "1692",
        "2820/1128/1692",
        "prepared",
    ]
    split = root / "dtd" / name
    assert split.read_bytes() == split_bytes
    assert main(["data", "verify", "--dataset", "dtd", "--data-root", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"  split: {split} = the published CoOp {name}"


def test_a_damaged_shipped_split_is_refused_and_nothing_is_left(tmp_path, monkeypatch, capsys):
    """A shipped split that fails its hash (a damaged installation) is one line, and nothing is left."""
    _, files = dtd_with_every_published_image(tmp_path)
    serve_from(monkeypatch, ArchiveServer({}), "dtd", files)  # the synthetic archive's MD5
    name = "split_zhou_DescribableTextures.json"
    monkeypatch.setitem(SHA256, name, "0" * 64)
    source = write_files(tmp_path / "archives", files)
    root = tmp_path / "data"
    assert main(["data", "prepare", "dtd", "--data-root", str(root), "--from", str(source)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: the shipped file vlprompt/data/shipped/coop_splits/{name}.xz fails its SHA-256 check "
        "(f26ebeccd2b5… != 000000000000…); reinstall vlprompt"
    )
    assert not (root / "dtd").exists() and not (root / prepare_module.STAGING).exists()


def test_the_shipped_splits_are_the_published_files_byte_for_byte():
    """Every shipped file decompresses to CoOp's published file (../shared/data/coop_splits), byte for byte, and
    the hash it is checked against is that file's."""
    assert set(SHA256) == {p.name for p in shared_file(COOP_SPLITS).iterdir()}
    for name, digest in SHA256.items():
        original = (COOP_SPLITS / name).read_bytes()
        assert published.published(name) == original, name
        assert sha256(original) == digest, name


def test_readers_use_the_shipped_split_when_the_data_root_has_none(tmp_path, caplog):
    """A data root with DTD's images and no split file: the reader uses the shipped published split."""
    import logging

    from vlprompt.data import read_dataset

    rows = json.loads(published.published("split_zhou_DescribableTextures.json"))
    image = jpeg(0)
    for rel in {r[0] for split in rows.values() for r in split}:
        path = tmp_path / "dtd" / "images" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image)
    with caplog.at_level(logging.INFO):
        dataset = read_dataset("dtd", tmp_path)
    assert "using the published CoOp split shipped with vlprompt" in caplog.text
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (2820, 1128, 1692)
    assert [(d.relpath, d.label) for d in dataset.train[:3]] == [(r[0], r[1]) for r in rows["train"][:3]]
    assert not (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").exists()


def test_verify_says_how_a_split_differs_from_the_published_one(tmp_path, monkeypatch, capsys):
    data = shared_file(COOP_SPLITS / "split_zhou_EuroSAT.json").read_bytes()
    rows = json.loads(data)
    mine = {"train": rows["train"][:10], "val": rows["val"][:5], "test": rows["train"][10:15]}
    root = tmp_path / "data"
    (root / "eurosat").mkdir(parents=True)
    split = root / "eurosat" / "split_zhou_EuroSAT.json"
    split.write_text(json.dumps(mine))
    from vlprompt.data.verify import split_lines

    assert split_lines("eurosat", root) == [
        f"  split: {split} differs from the published CoOp split_zhou_EuroSAT.json: train / "
        "val / test 10 vs 13500 / 5 vs 5400 / 5 vs 8100 entries, 5 entries not in the published split"
    ]
    split.unlink()
    assert split_lines("eurosat", root) == [
        f"  split: {split} does not exist; the published CoOp split_zhou_EuroSAT.json shipped with vlprompt is used"
    ]
    assert split_lines("food101", root)[0].startswith(
        f"  split: {root / 'food-101' / 'split_zhou_Food101.json'}; CoOp's split_zhou_Food101.json is not public"
    )
    assert split_lines("imagenet", root) == []


def test_imagenet_classnames_are_clips_names_in_sorted_wnid_order():
    import os

    import timm
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    synsets = Path(os.path.dirname(timm.__file__), "data", "_info", "imagenet_synsets.txt").read_text().split()
    expected = "".join(f"{w} {n}\n" for w, n in zip(synsets, IMAGENET_CLASSNAMES))
    assert shipped("imagenet_classnames.txt").decode() == expected


def test_urls_and_checksums_are_torchvisions():
    from torchvision import datasets as tv
    from torchvision.datasets import imagenet as tv_imagenet

    ours = {r.filename: (r.url, r.md5) for recipe in RECIPES.values() for r in recipe.resources}
    assert ours["dtd-r1.0.1.tar.gz"] == (tv.DTD._URL, tv.DTD._MD5)
    assert ours["food-101.tar.gz"] == (tv.Food101._URL, tv.Food101._MD5)
    assert ours["SUN397.tar.gz"] == (tv.SUN397._DATASET_URL, tv.SUN397._DATASET_MD5)
    assert ours["fgvc-aircraft-2013b.tar.gz"][0] == tv.FGVCAircraft._URL
    for url, md5 in tv.OxfordIIITPet._RESOURCES:
        assert ours[url.rsplit("/", 1)[1]] == (url, md5)
    for filename, md5 in tv.Flowers102._file_dict.values():
        assert ours[filename] == (tv.Flowers102._download_url_prefix + filename, md5)
    for filename, md5 in tv_imagenet.ARCHIVE_META.values():
        assert ours[filename] == (None, md5)


def test_dry_run_lists_urls_and_sizes_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "data"
    assert main(["data", "prepare", "all", "--datasets", "dtd,imagenet", "--data-root", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"dtd -> {root / 'dtd'}: to prepare"
    assert out[1].split() == [
        "dtd-r1.0.1.tar.gz", "~", "625", "MB", "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
        "(md5", "fff73e5086ae6bdbea199a49dfb8a4c1)",
    ]  # fmt: skip
    assert out[2] == (
        "  published split_zhou_DescribableTextures.json: shipped with vlprompt  "
        f"(sha256 {SHA256['split_zhou_DescribableTextures.json'][:12]}…)"
    )
    assert "ILSVRC2012_img_train.tar" in out[4] and "not downloadable (ImageNet needs an account" in out[4]
    assert not root.exists()


def test_prepare_all_prints_the_summary_against_published_counts(tmp_path, monkeypatch, capsys, regenerated_splits):
    pytest.importorskip("scipy")
    served = {n: UPSTREAM[n]() for n in ("dtd", "eurosat")}
    root = tmp_path / "data"
    with ArchiveServer({k: v for files in served.values() for k, v in files.items()}) as server:
        for name, files in served.items():
            serve_from(monkeypatch, server, name, files)
        argv = ["data", "prepare", "all", "--datasets", "dtd,eurosat", "--data-root", str(root), "--download"]
        assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["dataset", "train", "val", "test", "published", "train/val/test", "status"]
    assert lines[2].split() == ["dtd", "94", "47", "47", "2820/1128/1692", "prepared", "!"]
    assert lines[3].split() == ["eurosat", "20", "10", "10", "13500/5400/8100", "prepared", "!"]


def test_datasets_needs_all_and_known_names(tmp_path, capsys):
    assert main(["data", "prepare", "dtd", "--datasets", "dtd", "--data-root", str(tmp_path), "--dry-run"]) == 2
    assert "--datasets applies to `vlprompt data prepare all`" in capsys.readouterr().err
    assert main(["data", "prepare", "all", "--datasets", "dtd,nosuch", "--data-root", str(tmp_path), "--dry-run"]) == 2
    assert "--datasets: unknown dataset 'nosuch'; choose among caltech101," in capsys.readouterr().err
    archive = write_files(tmp_path, {"dtd-r1.0.1.tar.gz": b"x"}) / "dtd-r1.0.1.tar.gz"
    assert main(["data", "prepare", "all", "--data-root", str(tmp_path / "d"), "--from", str(archive)]) == 2
    assert "with `prepare all`, pass the folder that holds the archives" in capsys.readouterr().err
    assert main(["data", "prepare", "dtd", "--data-root", str(tmp_path / "d"), "--from", str(tmp_path / "no")]) == 2
    assert f"--from {tmp_path / 'no'} not found; pass the archive or the folder" in capsys.readouterr().err
    assert main(["data", "prepare", "dtd", "--data-root", str(tmp_path / "d")]) == 2
    assert "vlprompt data prepare dtd: pass --download, or --from PATH" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
