"""The second catalogue of bad inputs (issue 22): odd images, non-finite weights, settings out of range, templates,
class names and flags a command or dataset cannot honour.

* Image cases: every PIL mode a dataset can hold is decoded (by datasets, ``predict`` and the API alike) into the
  RGB image a viewer shows; each compares with an 8-bit rendering built here with NumPy.
* Command cases: exit status 2 and exactly one line, the expected ``error: ...`` (``{ws}``: the case's private
  workspace, ``{run}``: the shared trained run), with no traceback and the workspace unchanged byte for byte.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

import numpy as np
import pytest
import torch
from PIL import Image

from cli_runs import run_cli, snapshot, train_argv
from data_fixtures import make_image
from vlprompt.cli import main
from vlprompt.data.base import Datum
from vlprompt.data.images import ImageDataset, load_rgb, read_image
from vlprompt.data.pixels import to_viewer_rgb

# ------------------------------------------------------------------------------------------ images
#: an 8-bit gray ramp with both ends and the middle
GRAY = np.array([[0, 1, 2, 64, 127, 128], [129, 200, 253, 254, 255, 37]], dtype=np.uint8)
ALPHA = np.array([[0, 255, 128, 255, 0, 64], [255, 255, 1, 200, 255, 0]], dtype=np.uint8)
COLOR = np.stack([GRAY, GRAY[::-1, ::-1], (GRAY.astype(int) * 7 % 256).astype(np.uint8)], axis=-1)


def rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1).astype(np.uint8)


def on_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """c · a + 255 · (1 − a), a in 0..1, rounded: what a viewer shows on a white background."""
    a = alpha.astype(np.float64)[..., None] / 255
    return np.rint(color.astype(np.float64) * a + 255 * (1 - a)).astype(np.uint8)


def palette_image(transparent: bool):
    colors = np.array([[250, 0, 0], [0, 250, 0], [0, 0, 250], [9, 99, 199]], dtype=np.uint8)
    index = (GRAY % 4).astype(np.uint8)
    image = Image.fromarray(index, "L").convert("P")
    image.putpalette(colors.flatten().tolist())
    expected = colors[index]
    if transparent:
        image.info["transparency"] = 2
        expected[index == 2] = 255
    return image, expected


def rgb_with_key():
    image = Image.fromarray(COLOR)
    key = tuple(int(v) for v in COLOR[0, 3])
    image.info["transparency"] = key
    expected, keyed = COLOR.copy(), np.all(np.equal(COLOR, key), axis=-1)
    expected[keyed] = 255
    return image, expected


def frombytes(mode: str, planes: np.ndarray, palette=None) -> Image.Image:
    image = Image.frombytes(mode, planes.shape[1::-1], np.ascontiguousarray(planes).tobytes())
    if palette is not None:
        image.putpalette(palette)
    return image


def cmyk_image():
    """Pixels whose K is zero or whose C, M, Y are: there PIL's conversions of every version agree with
    R = 255 − C − K (G from M, B from Y)."""
    c, k = GRAY, GRAY[::-1, ::-1]
    inked = c > 127
    zero = np.zeros_like(GRAY)
    cmyk = np.stack([np.where(inked, c, 0), zero, np.where(inked, c // 3, 0), np.where(inked, 0, k)], -1)
    expected = 255 - cmyk[..., :3].astype(int) - cmyk[..., 3:].astype(int)
    return Image.fromarray(cmyk.astype(np.uint8), "CMYK"), expected.astype(np.uint8)


def ycbcr_gray():
    """Y with neutral chroma (Cb = Cr = 128) is gray Y in every YCbCr convention."""
    planes = np.stack([GRAY, np.full_like(GRAY, 128), np.full_like(GRAY, 128)], -1)
    return Image.fromarray(planes, "YCbCr"), rgb(GRAY)


def wide(mode: str, values: np.ndarray) -> Image.Image:
    return frombytes(mode, values.astype({"I;16": "<u2", "I;16B": ">u2", "I": "<i4"}[mode]))


#: (id, file suffix or None for an in-memory image, builder -> (PIL image, expected uint8 HxWx3))
MODES = [
    ("1", ".png", lambda: (Image.fromarray(GRAY > 127), rgb((GRAY > 127).astype(np.uint8) * 255))),
    ("L", ".png", lambda: (Image.fromarray(GRAY), rgb(GRAY))),
    ("LA", ".png", lambda: (Image.fromarray(np.stack([GRAY, ALPHA], -1), "LA"), rgb(on_white(GRAY[..., None], ALPHA)[..., 0]))),
    ("La-premultiplied", None, lambda: (frombytes("La", np.stack([(GRAY.astype(int) * ALPHA // 255).astype(np.uint8), ALPHA], -1)), rgb(np.clip((GRAY.astype(int) * ALPHA // 255) + 255 - ALPHA, 0, 255).astype(np.uint8)))),
    ("P", ".png", lambda: palette_image(False)),
    ("P-transparent-index", ".png", lambda: palette_image(True)),
    ("P-transparent-gif", ".gif", lambda: palette_image(True)),
    ("PA", None, lambda: (frombytes("PA", np.stack([GRAY, ALPHA], -1), [v for i in range(256) for v in (i, i, i)]), on_white(rgb(GRAY), ALPHA))),
    ("RGB-transparent-key", ".png", rgb_with_key),
    ("RGBA", ".png", lambda: (Image.fromarray(np.concatenate([COLOR, ALPHA[..., None]], -1), "RGBA"), on_white(COLOR, ALPHA))),
    ("RGBa-premultiplied", None, lambda: (frombytes("RGBa", np.concatenate([COLOR * (ALPHA > 127)[..., None], 255 * (ALPHA > 127)[..., None]], -1).astype(np.uint8)), on_white(COLOR, 255 * (ALPHA > 127)))),
    ("I;16-png", ".png", lambda: (wide("I;16", GRAY.astype(np.uint32) * 257), rgb(GRAY))),
    ("I;16B-tiff", ".tif", lambda: (wide("I;16B", GRAY.astype(np.uint32) * 257), rgb(GRAY))),
    ("I-32bit-tiff", ".tif", lambda: (wide("I", np.where(GRAY == 37, 70000, GRAY.astype(np.int64) * 257) - (GRAY == 0) * 5), rgb(np.where(GRAY == 37, 255, GRAY)))),
    ("F-float-tiff", ".tif", lambda: (Image.fromarray(np.where(GRAY == 37, np.nan, np.where(GRAY == 254, 2.0, GRAY / 255)).astype(np.float32), "F"), rgb(np.where(GRAY == 37, 0, np.where(GRAY == 254, 255, GRAY))))),
    ("CMYK-tiff", ".tif", cmyk_image),
    ("YCbCr-tiff", ".tif", ycbcr_gray),
]  # fmt: skip


@pytest.mark.parametrize("suffix,build", [m[1:] for m in MODES], ids=[m[0] for m in MODES])
def test_every_image_mode_becomes_the_rgb_a_viewer_shows(suffix, build, tmp_path):
    image, expected = build()
    if suffix is None:
        got = [to_viewer_rgb(image)]
    else:
        path = tmp_path / f"image{suffix}"
        image.save(path, **({"transparency": image.info["transparency"]} if "transparency" in image.info else {}))
        dataset = ImageDataset([Datum(impath=str(path), label=0, classname="x", relpath=path.name)])
        got = [load_rgb(str(path)), read_image(path), dataset[0][0]]
    for decoded in got:
        assert decoded.mode == "RGB" and decoded.size == (expected.shape[1], expected.shape[0])
        assert np.array_equal(np.asarray(decoded), expected), (np.asarray(decoded)[..., 0], expected[..., 0])


# ------------------------------------------------------------------------------------------ command cases
@dataclass
class Ctx:
    ws: Path
    folder: Path
    run: Path
    bb: List[str]
    mp: pytest.MonkeyPatch

    def train(self, *extra: str, method: str = "coop", epochs: int = 1) -> List[str]:
        args = train_argv(self.ws / "out", self.folder, self.bb, *extra, epochs=epochs)
        args[args.index("--method") + 1] = method
        if not method.startswith("coop"):
            i = args.index("coop.n_ctx=4")
            del args[i - 1 : i + 1]
        return args

    def data(self) -> List[str]:
        return ["--dataset", "folder", "--data-root", str(self.folder)]

    def damaged_run(self, value: float = float("nan")) -> Path:
        """A copy of the trained run whose context holds ``value`` at one entry."""
        from safetensors.torch import load_file, save_file

        run = Path(shutil.copytree(self.run, self.ws / "run"))
        tensors = load_file(str(run / "weights.safetensors"))
        tensors["learner.ctx"][1, 2] = value
        save_file(tensors, str(run / "weights.safetensors"))
        return run

    def image(self, name: str, content: bytes = None) -> Path:
        path = make_image(self.ws / name, size=(40, 40))
        if content is not None:
            path.write_bytes(content)
        return path


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], List[str]]
    expect: str  # the whole error line; {ws}, {run} and {folder} are filled in; a regex when it starts with ^


NAN_LINE = "error: {ws}/run/weights.safetensors: tensor learner.ctx holds NaN values; the run directory is damaged: train it again"  # fmt: skip


def _truncated(c: Ctx) -> Path:
    path = c.image("cut.png")
    path.write_bytes(path.read_bytes()[:-40])
    return path


def _bomb(c: Ctx) -> Path:
    c.mp.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40 x 40 pixels is more than twice that: PIL refuses
    return c.image("bomb.png")


def _predict(c: Ctx, *extra) -> List[str]:
    return ["predict", "--run", str(c.run), *extra]


def _zeroshot_with_bad_test_image(c: Ctx) -> List[str]:
    return ["zeroshot", "--dataset", "folder", "--data-root", str(_bad_test_image(c)), "--out", str(c.ws / "zs"), *c.bb]


def _bad_test_image(c: Ctx) -> Path:
    data = Path(shutil.copytree(c.folder, c.ws / "data"))
    (data / "test" / "red_circle" / "red_circle_0.png").write_bytes(b"not a png")
    return data


def _bad_train_image(c: Ctx) -> Path:
    data = Path(shutil.copytree(c.folder, c.ws / "data"))
    (data / "train" / "green_square" / "green_square_1.png").write_bytes(b"\x89PNG\r\n\x1a\n but cut")
    return data


def _broken_link(c: Ctx) -> Path:
    (c.ws / "imgs").mkdir()
    (c.ws / "imgs" / "gone.png").symlink_to(c.ws / "nowhere.png")
    return c.ws / "imgs"


def _trust_pickle_backbone(c: Ctx) -> Path:
    """The tiny backbone's weights in a pickle that weights_only loading refuses (an ``argparse.Namespace``)."""
    from safetensors.torch import load_file

    path = c.ws / "legacy.pt"
    torch.save({"state_dict": load_file(c.bb[3]), "args": argparse.Namespace(arch="tiny")}, path)
    return path


def _templates_file(c: Ctx) -> Path:
    path = c.ws / "templates.txt"
    path.write_text("a photo of a {}.\na drawing of a {}.\n")
    return path


def _names_file(c: Ctx, text: str) -> Path:
    path = c.ws / "names.txt"
    path.write_text(text)
    return path


def _one_gpu(c: Ctx) -> None:
    c.mp.setattr(torch.cuda, "device_count", lambda: 1)
    c.mp.setattr(torch.cuda, "is_available", lambda: True)


CASES = [
    # ---------------------------------------------------------------- undecodable images (predict, datasets)
    Case("predict-truncated-png", lambda c: _predict(c, str(_truncated(c))), r"^error: cannot read image {ws}/cut\.png \(OSError: image file is truncated.*\); replace the file or leave it out$"),
    Case("predict-not-an-image", lambda c: _predict(c, str(c.image("fake.jpg", b"plain text, not a JPEG"))), "error: cannot read image {ws}/fake.jpg (UnidentifiedImageError: cannot identify image file '{ws}/fake.jpg'); replace the file or leave it out"),
    Case("predict-empty-file", lambda c: _predict(c, str(c.image("empty.png", b""))), "error: cannot read image {ws}/empty.png (UnidentifiedImageError: cannot identify image file '{ws}/empty.png'); replace the file or leave it out"),
    Case("predict-decompression-bomb", lambda c: _predict(c, str(_bomb(c))), r"^error: cannot read image {ws}/bomb\.png \(DecompressionBombError: Image size \(1600 pixels\) exceeds limit of 200 pixels.*\); replace the file or leave it out$"),
    Case("zeroshot-undecodable-test-image-writes-no-run", _zeroshot_with_bad_test_image, "error: cannot read image {ws}/data/test/red_circle/red_circle_0.png (UnidentifiedImageError: cannot identify image file '{ws}/data/test/red_circle/red_circle_0.png'); replace it with a readable copy and run the same command again (removing it or passing --skip-corrupt changes the data: a new --out)"),
    # ---------------------------------------------------------------- non-finite trained weights
    Case("eval-nan-weights", lambda c: ["eval", "--run", str(c.damaged_run()), *c.data(), "--out", str(c.ws / "ev")], NAN_LINE),
    Case("predict-nan-weights", lambda c: ["predict", "--run", str(c.damaged_run()), str(c.folder / "test")], NAN_LINE),
    Case("export-nan-weights", lambda c: ["export", "--run", str(c.damaged_run()), "--out", str(c.ws / "head.safetensors")], NAN_LINE),
    Case("corrupt-nan-weights", lambda c: ["corrupt", "--run", str(c.damaged_run()), *c.data(), "--out", str(c.ws / "co")], NAN_LINE),
    Case("analyze-nan-weights", lambda c: ["analyze", "feature-shift", "--run", str(c.damaged_run()), *c.data(), "--out", str(c.ws / "fs.json")], NAN_LINE),
    Case("eval-inf-weights", lambda c: ["eval", "--run", str(c.damaged_run(float("-inf"))), *c.data(), "--out", str(c.ws / "ev")], NAN_LINE.replace("NaN", "Inf")),
    Case("init-from-nan-run", lambda c: c.train("--init-from", str(c.damaged_run())), NAN_LINE),
    # ---------------------------------------------------------------- corrupt weights and positions
    Case("corrupt-weight-nan", lambda c: ["corrupt", "--run", str(c.run), "--op", "replace", "--pos", "0", "--weight", "nan", *c.data(), "--out", str(c.ws / "co")], "error: --weight: nan is not a finite number >= 0 (the std of the replacement or the rescale factor)"),
    Case("corrupt-weight-inf", lambda c: ["corrupt", "--run", str(c.run), "--op", "scale", "--pos", "0", "--weight", "inf", *c.data(), "--out", str(c.ws / "co")], "error: --weight: inf is not a finite number >= 0 (the std of the replacement or the rescale factor)"),
    Case("corrupt-weight-negative", lambda c: ["corrupt", "--run", str(c.run), "--op", "replace", "--pos", "0", "--weight", "-0.5", *c.data(), "--out", str(c.ws / "co")], "error: --weight: -0.5 is not a finite number >= 0 (the std of the replacement or the rescale factor)"),
    Case("corrupt-sweep-weights-nan", lambda c: ["corrupt", "--run", str(c.run), "--op", "scale", "--sweep", "--positions", "all", "--weights", "0,nan", *c.data(), "--out", str(c.ws / "co")], "error: --weights 0,nan: nan is not a finite number >= 0 (the std of the replacement or the rescale factor)"),
    Case("corrupt-sweep-position-outside", lambda c: ["corrupt", "--run", str(c.run), "--op", "scale", "--sweep", "--positions", "0,9", "--weights", "0.5", *c.data(), "--out", str(c.ws / "co")], "error: --positions 0,9: 9 is outside 0..3 (the prompt has 4 positions)"),
    # ---------------------------------------------------------------- settings out of range (--set)
    Case("set-nemesis-weight-nan", lambda c: c.train("--set", "nemesis.weight=nan", method="coop+nemesis"), "error: nemesis.weight must be >= 0, got nan (e.g. --set nemesis.weight=1.0)"),
    Case("set-nemesis-weight-negative", lambda c: c.train("--set", "nemesis.weight=-1", method="coop+nemesis"), "error: nemesis.weight must be >= 0, got -1.0 (e.g. --set nemesis.weight=1.0)"),
    Case("set-nemesis-beta-above-one", lambda c: c.train("--set", "nemesis.beta=1.5", method="coop+nemesis"), "error: nemesis.beta must be in 0..1, got 1.5 (e.g. --set nemesis.beta=1.0)"),
    Case("set-nemesis-num-positions-zero", lambda c: c.train("--set", "nemesis.beta=0.5", "--set", "nemesis.num_positions=0", method="coop+nemesis"), "error: nemesis.num_positions must be >= 1, got 0 (fix --set nemesis.num_positions)"),
    Case("set-nemesis-num-positions-above-prompt", lambda c: c.train("--set", "nemesis.beta=0.5", "--set", "nemesis.num_positions=random80", method="coop+nemesis"), "error: nemesis.num_positions=random80 is above the 4 positions of prompt tensor ctx (e.g. --set nemesis.num_positions=4)"),
    Case("set-kg-weight-inf", lambda c: c.train("--set", "kg.weight=inf", method="coop+kg"), "error: kg.weight must be >= 0, got inf (e.g. --set kg.weight=8.0)"),
    Case("set-kg-weight-negative", lambda c: c.train("--set", "kg.weight=-2", method="coop+kg"), "error: kg.weight must be >= 0, got -2.0 (e.g. --set kg.weight=8.0)"),
    Case("set-dept-weight-above-one", lambda c: c.train("--set", "dept.weight=1.2", method="coop+dept"), "error: dept.weight must be in 0..1, got 1.2 (e.g. --set dept.weight=0.7)"),
    Case("set-dept-lr-mult-zero", lambda c: c.train("--set", "dept.lr_mult=0", method="coop+dept"), "error: dept.lr_mult must be > 0, got 0.0 (e.g. --set dept.lr_mult=6.5)"),
    Case("set-coop-init-std-inf", lambda c: c.train("--set", "coop.init_std=inf"), "error: coop.init_std must be > 0, got inf (e.g. --set coop.init_std=0.02)"),
    Case("set-train-momentum-inf", lambda c: c.train("--set", "train.momentum=inf"), "error: train.momentum must be >= 0, got inf (e.g. --set train.momentum=0.9)"),
    Case("set-ivlp-depth-vision-negative", lambda c: c.train("--set", "ivlp.depth_vision=-1", method="ivlp"), "error: ivlp.depth_vision must be >= 0, got -1 (e.g. --set ivlp.depth_vision=12)"),
    Case("set-ivlp-vision-prompts-without-depth", lambda c: c.train("--set", "ivlp.depth_vision=0", method="ivlp"), "error: ivlp.depth_vision must be >= 1 with vision prompts (ivlp.n_ctx_vision=2), got 0 (e.g. --set ivlp.depth_vision=12, or --set ivlp.n_ctx_vision=0)"),
    Case("set-maple-depth-zero", lambda c: c.train("--set", "maple.depth=0", method="maple"), "error: maple.depth must be >= 1, got 0 (e.g. --set maple.depth=9)"),
    Case("set-gpa-std-nan", lambda c: c.train("--set", "gpa.std=nan", method="ivlp+src"), "error: gpa.std must be > 0, got nan (e.g. --set gpa.std=1.0)"),
    Case("set-gpa-mean-inf", lambda c: c.train("--set", "gpa.mean=-inf", method="ivlp+src"), "error: gpa.mean must be a finite number, got -inf (e.g. --set gpa.mean=15.0)"),
    Case("set-src-text-weight-negative", lambda c: c.train("--set", "src.text_weight=-25", method="ivlp+src"), "error: src.text_weight must be >= 0, got -25.0 (e.g. --set src.text_weight=25.0)"),
    Case("set-restore-calib-nan", lambda c: c.train("--set", "restore.text_calib_r=nan", method="maple+restore"), "error: restore.text_calib_r must be >= 0, got nan (e.g. --set restore.text_calib_r=0.1)"),
    # ---------------------------------------------------------------- templates and class names
    Case("predict-template-without-braces", lambda c: _predict(c, str(c.folder / "test"), "--template", "a photo"), "error: --template 'a photo': a template needs exactly one {{}} for the class name and no other braces"),
    Case("export-template-two-braces", lambda c: ["export", "--run", str(c.run), "--out", str(c.ws / "h.safetensors"), "--template", "{} or {}"], "error: --template '{{}} or {{}}': a template needs exactly one {{}} for the class name and no other braces"),
    Case("predict-duplicate-classnames", lambda c: _predict(c, str(c.folder / "test"), "--classnames", "cat,dog,cat"), "error: --classnames cat,dog,cat gives two classes the name 'cat'; class names must differ"),
    Case("predict-duplicate-classnames-file", lambda c: _predict(c, str(c.folder / "test"), "--classnames", str(_names_file(c, "cat\ndog\ndog\n"))), "error: --classnames {ws}/names.txt gives two classes the name 'dog'; class names must differ"),
    Case("export-duplicate-classnames", lambda c: ["export", "--run", str(c.run), "--out", str(c.ws / "h.safetensors"), "--classnames", "a,b,a"], "error: --classnames a,b,a gives two classes the name 'a'; class names must differ"),
    Case("zeroshot-template-with-templates-file", lambda c: ["zeroshot", *c.data(), "--template", "a {}.", "--templates", str(_templates_file(c)), "--out", str(c.ws / "zs"), *c.bb], "error: --template does not apply with --templates {ws}/templates.txt (the file is the whole ensemble): add the template to the file, or drop one of the two"),
    # ---------------------------------------------------------------- flags a dataset or machine cannot honour
    Case("toy-data-root", lambda c: ["zeroshot", "--dataset", "toy-b2n", "--data-root", str(c.ws / "toy"), "--out", str(c.ws / "zs")], "error: --data-root does not apply to --dataset toy-b2n (generated under $VLPROMPT_CACHE/toy; set VLPROMPT_CACHE to move it): drop it"),
    Case("toy-split-file", lambda c: ["zeroshot", "--dataset", "toy-xd", "--split-file", str(c.ws / "s.json"), "--out", str(c.ws / "zs")], "error: --split-file does not apply to --dataset toy-xd (generated under $VLPROMPT_CACHE/toy; set VLPROMPT_CACHE to move it): drop it"),
    Case("device-gpu-index-missing", lambda c: (_one_gpu(c), c.train("--device", "cuda:3"))[1], "error: --device cuda:3: this machine has GPU 0 (no GPU 3); name GPUs it has"),
    Case("device-unknown-kind", lambda c: c.train("--device", "gpu1"), "error: --device 'gpu1': use auto, cpu, cuda or cuda:N"),
    Case("sweep-devices-missing", lambda c: (_one_gpu(c), ["sweep", "--root", str(c.ws / "sw"), "--protocol", "fewshot", "--methods", "coop", "--datasets", "toy", "--seeds", "1", "--shots", "1", "--devices", "0,1"])[1], "error: --devices 0,1: this machine has GPU 0 (no GPU 1); name GPUs it has"),
    Case("predict-device-missing-gpu", lambda c: (_one_gpu(c), _predict(c, str(c.folder / "test"), "--device", "cuda:1"))[1], "error: --device cuda:1: this machine has GPU 0 (no GPU 1); name GPUs it has"),
    # ---------------------------------------------------------------- more of each kind
    Case("eval-undecodable-test-image-writes-no-run", lambda c: ["eval", "--run", str(c.run), "--dataset", "folder", "--data-root", str(_bad_test_image(c)), "--out", str(c.ws / "ev")], "error: cannot read image {ws}/data/test/red_circle/red_circle_0.png (UnidentifiedImageError: cannot identify image file '{ws}/data/test/red_circle/red_circle_0.png'); replace it with a readable copy and run the same command again (removing it or passing --skip-corrupt changes the data: a new --out)"),
    Case("train-undecodable-train-image-writes-no-run", lambda c: train_argv(c.ws / "out", _bad_train_image(c), c.bb, "--no-feature-cache"), "error: cannot read image {ws}/data/train/green_square/green_square_1.png (UnidentifiedImageError: cannot identify image file '{ws}/data/train/green_square/green_square_1.png'); replace it with a readable copy and run the same command again (removing it or passing --skip-corrupt changes the data: a new --out)"),
    Case("predict-broken-symlink", lambda c: _predict(c, str(_broken_link(c))), "error: cannot read image {ws}/imgs/gone.png (FileNotFoundError: [Errno 2] No such file or directory: '{ws}/imgs/gone.png'); replace the file or leave it out"),
    Case("predict-classnames-file-one-class", lambda c: _predict(c, str(c.folder / "test"), "--classnames", str(_names_file(c, "cat\n"))), "error: --classnames {ws}/names.txt lists 1 class; give 2+ class names"),
    Case("predict-empty-template", lambda c: _predict(c, str(c.folder / "test"), "--template", ""), "error: --template '': a template needs exactly one {{}} for the class name and no other braces"),
    Case("predict-template-format-spec", lambda c: _predict(c, str(c.folder / "test"), "--template", "a {:>9}."), "error: --template 'a {{:>9}}.': a template needs exactly one {{}} for the class name and no other braces"),
    Case("corrupt-pos-outside", lambda c: ["corrupt", "--run", str(c.run), "--op", "scale", "--pos", "4", "--weight", "0.5", *c.data(), "--out", str(c.ws / "co")], "error: --pos 4 is outside 0..3 (ctx has 4 positions)"),
    Case("set-kg-weight-overflow", lambda c: c.train("--set", "kg.weight=1e999", method="coop+kg"), "error: kg.weight must be >= 0, got inf (e.g. --set kg.weight=8.0)"),
    Case("set-dept-weight-nan", lambda c: c.train("--set", "dept.weight=nan", method="coop+dept"), "error: dept.weight must be in 0..1, got nan (e.g. --set dept.weight=0.7)"),
    Case("set-train-weight-decay-negative", lambda c: c.train("--set", "train.weight_decay=-0.01"), "error: train.weight_decay must be >= 0, got -0.01 (e.g. --set train.weight_decay=0.0005)"),
    Case("set-restore-adapter-hidden-negative", lambda c: c.train("--set", "restore.adapter_hidden=-8", method="maple+restore"), "error: restore.adapter_hidden must be >= 0, got -8 (e.g. --set restore.adapter_hidden=0)"),
    Case("set-nemesis-random-zero-positions", lambda c: c.train("--set", "nemesis.beta=0", "--set", "nemesis.num_positions=random0", method="coop+nemesis"), "error: nemesis.num_positions='random0': PAN (nemesis.beta < 1) needs a positive int or random<N>, e.g. --set nemesis.num_positions=4"),
    Case("set-vpt-init-std-negative", lambda c: c.train("--set", "vpt.init_std=-0.02", method="vpt"), "error: vpt.init_std must be > 0, got -0.02 (e.g. --set vpt.init_std=0.02)"),
    Case("nproc-bad-data-is-one-line", lambda c: c.train("--shots", "9", "--nproc", "2"), "error: --shots 9: --dataset folder has at most 6 train images per class; use --shots 6 or fewer (0 = all images)"),
    Case("nproc-more-processes-than-gpus", lambda c: (_one_gpu(c), c.train("--nproc", "2", "--device", "cuda"))[1], "error: --nproc 2: 1 GPU(s) visible, one per process is needed; use at most that many processes or --device cpu"),
    # ---------------------------------------------------------------- hints that name a flag the command takes
    Case("predict-pickled-backbone-hint", lambda c: _predict(c, str(c.folder / "test"), "--pretrained", str(_trust_pickle_backbone(c))), "error: {ws}/legacy.pt needs full unpickling, which can run arbitrary code; re-save it as safetensors, or pass --trust-pickle if you trust its source"),
]  # fmt: skip


def test_the_catalogue_is_large_and_unique():
    assert len(CASES) + len(MODES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.fixture
def ctx(tmp_path, monkeypatch, tiny_folder, tiny_vit_files, trained_run):
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    ws = tmp_path / "ws"
    ws.mkdir()
    vit = tiny_vit_files
    return Ctx(ws, tiny_folder, trained_run, ["--backbone", str(vit[0]), "--pretrained", str(vit[1])], monkeypatch)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_exactly_one_line_and_changes_nothing(case, ctx, capsys):
    argv = case.argv(ctx)
    before = snapshot(ctx.ws)
    code, err, lines = run_cli(argv, capsys)
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    expect = case.expect.format(ws=ctx.ws, run=ctx.run, folder=ctx.folder)
    if expect.startswith("^"):
        assert re.fullmatch(expect, lines[0]), lines[0]
    else:
        assert lines[0] == expect
    assert snapshot(ctx.ws) == before


def test_predict_and_export_take_trust_pickle(ctx, capsys):
    """The refusal's hint names --trust-pickle, which predict and export accept (same classes as the run)."""
    legacy = str(_trust_pickle_backbone(ctx))
    assert (
        main(
            _predict(ctx, str(ctx.folder / "test"), "--pretrained", legacy, "--trust-pickle", "--format", "json", "-q")
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert main(_predict(ctx, str(ctx.folder / "test"), "--format", "json", "-q")) == 0
    assert rows == json.loads(capsys.readouterr().out)
    head = ctx.ws / "head.safetensors"
    assert main(["export", "--run", str(ctx.run), "--out", str(head), "--trust-pickle"]) == 0 and head.is_file()


def test_a_finished_run_leaves_no_lock_and_reopens_without_a_warning(ctx, capsys, caplog):
    assert not (ctx.run / ".lock").exists()
    run = Path(shutil.copytree(ctx.run, ctx.ws / "run"))
    with caplog.at_level("WARNING", logger="vlprompt"):
        assert main(train_argv(run, ctx.folder, ctx.bb)) == 0
    assert "already complete" in capsys.readouterr().out and not caplog.records and not (run / ".lock").exists()


def test_skip_corrupt_names_an_unreadable_image_once(ctx, capsys):
    data = Path(shutil.copytree(ctx.folder, ctx.ws / "data"))
    bad = data / "test" / "red_circle" / "red_circle_0.png"
    bad.write_bytes(b"not a png")
    out = ctx.ws / "zs"
    argv = ["zeroshot", "--dataset", "folder", "--data-root", str(data), "--out", str(out), "--skip-corrupt", *ctx.bb]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count(f"skipping unreadable image {bad}") == 1, err
    assert json.loads((out / "results.json").read_text())["num_images"] == 15


def test_name_and_template_files_saved_with_a_byte_order_mark_read_as_written(tmp_path):
    from vlprompt.data.overrides import read_classnames, read_templates

    names, templates = tmp_path / "names.txt", tmp_path / "templates.txt"
    names.write_text("red_circle: red circle\ngreen_square: green square\n", encoding="utf-8-sig")
    templates.write_text("a photo of a {}.\n", encoding="utf-8-sig")
    assert read_classnames(names) == {"red_circle": "red circle", "green_square": "green square"}
    assert read_templates(templates) == ["a photo of a {}."]


def test_the_api_checks_a_prediction_template(trained_run, tiny_folder):
    from vlprompt import load_run
    from vlprompt.errors import VLPromptError

    model = load_run(trained_run, device="cpu")
    image = next((tiny_folder / "test").rglob("*.png"))
    message = "template 'a {} and {}': a template needs exactly one {} for the class name and no other braces"
    with pytest.raises(VLPromptError) as info:
        model.predict([image], template="a {} and {}")
    assert str(info.value) == message
