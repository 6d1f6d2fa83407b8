"""The catalogue of bad inputs: every one ends in exit status 2 and one line ``error: ...`` naming the flag or file,
with no traceback, and leaves every file the user had exactly as it was (nothing is written before a refusal; a
failed write keeps the previous version).

Each case builds its command line in a private workspace (``ctx.ws``), where it may first create or damage files;
the workspace is compared byte for byte before and after. Cases marked ``writes`` fail after the run started
writing its own new files (disk full): for them only the files that existed before must be unchanged.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from cli_runs import run_cli, snapshot, train_argv
from data_fixtures import make_image, write_json

#: files a run directory itself keeps up to date (its marker, lock and log); a refused resume may touch them
BOOKKEEPING = {".vlprompt-run.json", ".lock", "log.txt"}


@dataclass
class Ctx:
    ws: Path
    folder: Path
    run: Path
    bb: List[str]
    rn: List[str]
    mp: pytest.MonkeyPatch

    def train(self, *extra: str, out: str = "out", folder: Path = None, epochs: int = 1) -> List[str]:
        return train_argv(self.ws / out, folder or self.folder, self.bb, *extra, epochs=epochs)

    def run_copy(self) -> Path:
        """A copy of the finished tiny run inside the workspace (to damage)."""
        return Path(shutil.copytree(self.run, self.ws / "run"))

    def folder_copy(self, classes=None) -> Path:
        """A copy of the tiny image folder (``classes``: only these class folders)."""
        dst = self.ws / "data"
        for split in ("train", "val", "test"):
            for cls in sorted((self.folder / split).iterdir()):
                if classes is None or cls.name in classes:
                    shutil.copytree(cls, dst / split / cls.name)
        return dst

    def eval(self, run: Path, *extra: str) -> List[str]:
        return ["eval", "--run", str(run), "--dataset", "folder", "--data-root", str(self.folder), *extra]


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], List[str]]
    expect: str
    writes: bool = False


def _files(ctx: Ctx, *names: str) -> Path:
    for name in names:
        (ctx.ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx.ws / name).write_text(f"the user's own {name}\n")
    return ctx.ws


def _split(ctx: Ctx, test_rows) -> List[str]:
    """Training on a split file over the tiny folder's images with these test rows (None: a malformed file)."""
    train = [[f"train/red_circle/red_circle_{i}.png", 0, "red_circle"] for i in range(2)]
    train += [[f"train/green_square/green_square_{i}.png", 1, "green_square"] for i in range(2)]
    split = write_json(ctx.ws / "split.json", {"train": train, "val": [], "test": test_rows})
    if test_rows is None:
        split.write_text('{"train": [')
    args = ctx.train()
    i = args.index("folder")
    args[i : i + 3] = ["split", "--split-file", str(split), "--data-root", str(ctx.folder)]
    return args


def _ivlp(ctx: Ctx, *extra: str) -> List[str]:
    args = ctx.train("--method", "ivlp", *extra)
    i = args.index("coop.n_ctx=4")
    del args[i - 1 : i + 1]
    return args


def _scandir_denied(ctx: Ctx, target: Path) -> None:
    real = os.scandir

    def scandir(path="."):
        if Path(path) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    ctx.mp.setattr(os, "scandir", scandir)


def _no_write_access(ctx: Ctx, target: Path) -> None:
    real = os.access
    ctx.mp.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == target else real(path, mode, **kw))


def _disk_full(owner: str, name: str, when: Callable[..., bool], *extra: str, epochs: int = 1):
    """A training run during which the writer ``owner.name`` fails with ENOSPC, as on a full disk, for the calls
    ``when`` picks (it gets the writer's arguments)."""

    def argv(ctx: Ctx) -> List[str]:
        module_name, _, cls = owner.partition(":")
        target = importlib.import_module(module_name)
        target = getattr(target, cls) if cls else target
        real = getattr(target, name)

        def writer(*args, **kwargs):
            if when(*args, **kwargs):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args, **kwargs)

        ctx.mp.setattr(target, name, writer)
        return ctx.train(*extra, epochs=epochs)

    return argv


def _nth_call(n: int, test: Callable[..., bool]) -> Callable[..., bool]:
    """``test``, true only from its ``n``-th true call on."""
    seen = {"calls": 0}

    def when(*args, **kwargs):
        if test(*args, **kwargs):
            seen["calls"] += 1
            return seen["calls"] >= n
        return False

    return when


def _damaged_weights(ctx: Ctx, change: Callable[[Dict], None]) -> List[str]:
    run = ctx.run_copy()
    meta = json.loads((run / "weights.json").read_text())
    change(meta)
    (run / "weights.json").write_text(json.dumps(meta))
    return ctx.eval(run, "--out", str(ctx.ws / "ev"))


def _wrong_shape(ctx: Ctx) -> List[str]:
    from safetensors.torch import load_file, save_file

    run = ctx.run_copy()
    tensors = load_file(str(run / "weights.safetensors"))
    tensors["learner.ctx"] = tensors["learner.ctx"][:3].contiguous()
    save_file(tensors, str(run / "weights.safetensors"))
    return ctx.eval(run, "--out", str(ctx.ws / "ev"))


def _resume_from(ctx: Ctx, damage: Callable[[Path], None]) -> List[str]:
    """The finished run made unfinished (no results.json) with a damaged resume checkpoint, re-run."""
    run = ctx.run_copy()
    (run / "results.json").unlink()
    damage(run / "checkpoints" / "last.pt")
    return train_argv(run, ctx.folder, ctx.bb)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _non_tensor_checkpoint(path: Path) -> None:
    import torch

    torch.save({"epoch": 1, "task": {"learner.ctx": Path("not a tensor")}, "optimizer": {}}, path)


def _empty_class(ctx: Ctx) -> List[str]:
    data = ctx.folder_copy()
    for split in ("train", "test"):
        (data / split / "orange_blob").mkdir()
    return ctx.train(folder=data)


def _class_without_train_images(ctx: Ctx) -> List[str]:
    data = ctx.folder_copy()
    make_image(data / "test" / "orange_blob" / "a.png")
    return ctx.train(folder=data)


def _two_weight_files(ctx: Ctx) -> List[str]:
    folder = ctx.ws / "weights"
    folder.mkdir()
    for name in ("a.safetensors", "b.safetensors"):
        shutil.copy(ctx.bb[3], folder / name)
    return ctx.train() + ["--pretrained", str(folder)]


def _foreign_results(ctx: Ctx) -> List[str]:
    run = ctx.run_copy()
    (run / "results.json").write_text(json.dumps({"score": 1}))
    return train_argv(run, ctx.folder, ctx.bb)


def _out_dot(ctx: Ctx) -> List[str]:
    _files(ctx, "log.txt", "metrics.jsonl")
    ctx.mp.chdir(ctx.ws)
    args = ctx.train()
    args[args.index("--out") + 1] = "."
    return args


def _short_metrics_write(ctx: Ctx) -> List[str]:
    from vlprompt import fileio

    real = os.write

    def short_write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("metrics.jsonl"):
            return real(fd, data[: len(data) // 2])  # the disk filled up in the middle of the line
        return real(fd, data)

    ctx.mp.setattr(fileio.os, "write", short_write)
    return ctx.train()


CASES = [
    # ---------------------------------------------------------------- flags (parse time)
    Case("batch-size-zero", lambda c: c.train("--batch-size", "0"), "--batch-size"),
    Case("batch-size-negative", lambda c: c.train("--batch-size", "-3"), "--batch-size"),
    Case("lr-negative", lambda c: c.train("--lr", "-0.1"), "--lr"),
    Case("lr-zero", lambda c: c.train("--lr", "0"), "--lr"),
    Case("lr-not-a-number", lambda c: c.train("--lr", "fast"), "--lr"),
    Case("epochs-zero", lambda c: c.train("--epochs", "0"), "--epochs"),
    Case("epochs-negative", lambda c: c.train("--epochs", "-2"), "--epochs"),
    Case("num-workers-negative", lambda c: c.train("--num-workers", "-1"), "--num-workers"),
    Case("seed-beyond-64-bits", lambda c: c.train("--seed", str(2**64)), "--seed"),
    Case("seed-negative", lambda c: c.train("--seed", "-1"), "--seed"),
    Case("shots-negative", lambda c: c.train("--shots", "-1"), "--shots"),
    Case("eval-every-negative", lambda c: c.train("--eval-every", "-1"), "--eval-every"),
    Case("feature-pool-negative", lambda c: c.train("--feature-pool", "-1"), "--feature-pool"),
    Case("precision-unknown", lambda c: c.train("--precision", "fp64"), "--precision"),
    Case("protocol-unknown", lambda c: c.train("--protocol", "zz"), "--protocol"),
    Case("required-flags-missing", lambda c: ["train", "--method", "coop"], "--dataset"),
    Case("set-negative-n-ctx", lambda c: c.train("--set", "coop.n_ctx=-1"), "coop.n_ctx"),
    Case("set-zero-n-ctx", lambda c: c.train("--set", "coop.n_ctx=0"), "coop.n_ctx"),
    Case("set-not-an-int", lambda c: c.train("--set", "coop.n_ctx=four"), "coop.n_ctx"),
    Case("set-unknown-key", lambda c: c.train("--set", "coop.nope=1"), "coop.nope"),
    Case("set-unknown-section", lambda c: c.train("--set", "nosec.x=1"), "nosec"),
    Case("set-malformed", lambda c: c.train("--set", "n_ctx4"), "--set"),
    Case("set-negative-deep-n-ctx", lambda c: _ivlp(c, "--set", "ivlp.n_ctx_text=-1"), "ivlp.n_ctx_text"),
    Case("word-init-longer-than-n-ctx", lambda c: c.train("--set", "coop.ctx_init=a_photo_of_a_big"), "coop.ctx_init"),
    Case("method-trailing-plus", lambda c: c.train("--method", "coop+"), "--method"),
    Case("method-unknown", lambda c: c.train("--method", "nosuch"), "nosuch"),
    Case("addon-unknown", lambda c: c.train("--method", "coop+nosuch"), "nosuch"),
    Case("two-base-methods", lambda c: c.train("--method", "coop+maple"), "two base methods"),
    Case("preset-unknown", lambda c: c.train("--preset", "nosuch"), "--preset"),
    # ---------------------------------------------------------------- data
    Case("data-root-missing", lambda c: c.train(folder=c.ws / "nowhere"), "nowhere"),
    Case("data-root-is-a-file", lambda c: c.train(folder=_files(c, "f.txt") / "f.txt"), "f.txt"),
    Case("dataset-unknown", lambda c: c.train("--dataset", "nosuch"), "nosuch"),
    Case(
        "dataset-needs-data-root",
        lambda c: ["train", "--method", "coop", "--dataset", "folder", "--out", "x"],
        "--data-root",
    ),
    Case(
        "data-folder-unreadable",
        lambda c: (_scandir_denied(c, c.folder / "train"), c.train())[1],
        "Permission denied",
    ),
    Case("split-file-malformed", lambda c: _split(c, None), "split.json"),
    Case("split-test-list-empty", lambda c: _split(c, []), "test split is empty"),
    Case(
        "test-image-missing",
        lambda c: _split(
            c, [["test/red_circle/red_circle_0.png", 0, "red_circle"], ["test/gone.png", 1, "green_square"]]
        ),
        "gone.png",
    ),
    Case(
        "subsample-new-leaves-one-class",
        lambda c: c.train("--subsample", "new", folder=c.folder_copy({"red_circle", "green_square"})),
        "--subsample new",
    ),
    Case("empty-class-folder", _empty_class, "orange_blob"),
    Case("class-without-train-images", _class_without_train_images, "orange blob"),
    Case("shots-above-available", lambda c: c.train("--shots", "7"), "--shots 7"),
    # ---------------------------------------------------------------- --out
    Case("out-is-a-file", lambda c: c.train(out="notes.txt") if _files(c, "notes.txt") else [], "notes.txt"),
    Case(
        "out-holds-user-weights",
        lambda c: c.train(out="mine") if _files(c, "mine/weights.safetensors", "mine/weights.json") else [],
        "not a vlprompt run",
    ),
    Case("out-dot-with-user-log", _out_dot, "not a vlprompt run"),
    Case(
        "out-in-read-only-folder",
        lambda c: (_no_write_access(c, c.ws / "ro"), (c.ws / "ro").mkdir(), c.train(out="ro/run"))[2],
        "permission denied",
    ),
    Case("out-run-with-foreign-results", _foreign_results, "results.json"),
    Case("out-other-run", lambda c: train_argv(c.run_copy(), c.folder, c.bb, "--lr", "0.02"), "different run"),
    Case(
        "zeroshot-out-holds-user-files",
        lambda c: [
            "zeroshot",
            "--dataset",
            "folder",
            "--data-root",
            str(c.folder),
            "--out",
            str(_files(c, "z/a.txt") / "z"),
            *c.bb,
        ],
        "not a vlprompt run",
    ),
    Case(
        "fewshot-out-unrelated-file",
        lambda c: [
            "data",
            "fewshot",
            "--dataset",
            "folder",
            "--data-root",
            str(c.folder),
            "--shots",
            "1",
            "--out",
            str(write_json(c.ws / "notes.json", {"mine": 1})),
        ],
        "notes.json",
    ),
    Case(
        "fewshot-out-is-a-folder",
        lambda c: [
            "data",
            "fewshot",
            "--dataset",
            "folder",
            "--data-root",
            str(c.folder),
            "--shots",
            "1",
            "--out",
            str(c.ws),
        ],
        "is a folder",
    ),
    Case(
        "export-out-unrelated-file",
        lambda c: ["export", "--run", str(c.run), "--out", str(_files(c, "mine.safetensors") / "mine.safetensors")],
        "mine.safetensors",
    ),
    Case("predict-topk-zero", lambda c: ["predict", "--run", str(c.run), str(c.folder), "--topk", "0"], "--topk"),
    Case("demo-out-is-a-file", lambda c: ["demo", "--out", str(_files(c, "demo.txt") / "demo.txt")], "demo.txt"),
    Case(
        "analyze-out-is-a-folder",
        lambda c: [
            "analyze",
            "feature-shift",
            "--run",
            str(c.run),
            "--dataset",
            "folder",
            "--data-root",
            str(c.folder),
            "--out",
            str(c.ws),
        ],
        "is a folder",
    ),
    # ---------------------------------------------------------------- trained runs and weights
    Case("eval-run-missing", lambda c: c.eval(c.ws / "nothing", "--out", str(c.ws / "ev")), "weights.safetensors"),
    Case(
        "eval-truncated-weights",
        lambda c: (_truncate(c.run_copy() / "weights.safetensors"), c.eval(c.ws / "run", "--out", str(c.ws / "ev")))[1],
        "weights.safetensors",
    ),
    Case(
        "eval-malformed-weights-json",
        lambda c: ((c.run_copy() / "weights.json").write_text("{"), c.eval(c.ws / "run", "--out", str(c.ws / "ev")))[1],
        "weights.json",
    ),
    Case(
        "eval-weights-json-other-method",
        lambda c: _damaged_weights(c, lambda m: (m.update(method="ivlp"), m["run_config"].update(method="ivlp"))),
        "does not match method ivlp",
    ),
    Case("eval-tensor-wrong-shape", _wrong_shape, "wrong shape"),
    Case("eval-other-architecture", lambda c: c.eval(c.run, "--out", str(c.ws / "ev"), *c.rn), "architecture"),
    Case("resume-truncated-checkpoint", lambda c: _resume_from(c, _truncate), "last.pt"),
    Case("resume-non-tensor-checkpoint", lambda c: _resume_from(c, _non_tensor_checkpoint), "last.pt"),
    Case("pretrained-folder-two-files", _two_weight_files, "2 weights files"),
    Case("pretrained-missing", lambda c: c.train("--pretrained", str(c.ws / "gone.pt")), "gone.pt"),
    Case("backbone-unknown", lambda c: c.train("--backbone", "NoSuchNet-1"), "NoSuchNet-1"),
    # ---------------------------------------------------------------- disk full
    Case(
        "disk-full-results",
        _disk_full("pathlib:Path", "write_text", lambda path, *a, **k: "results.json" in path.name),
        "results.json: No space left on device",
        writes=True,
    ),
    Case(
        "disk-full-weights",
        _disk_full("safetensors.torch", "save_file", lambda t, path, *a, **k: "weights.safetensors" in str(path)),
        "weights.safetensors",
        writes=True,
    ),
    Case(
        "disk-full-checkpoint",
        _disk_full("torch", "save", _nth_call(2, lambda obj, path, *a, **k: "last.pt" in str(path)), epochs=2),
        "last.pt is unchanged",
        writes=True,
    ),
    Case("disk-full-metrics", _short_metrics_write, "metrics.jsonl", writes=True),
]


def _users(snapshot: Dict[str, str]) -> Dict[str, str]:
    """The snapshot without the bookkeeping files of the copied run directory."""
    return {k: v for k, v in snapshot.items() if not (k.startswith("run/") and Path(k).name in BOOKKEEPING)}


def test_the_catalogue_is_large_and_unique():
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(
    case, tmp_path, monkeypatch, capsys, tiny_folder, tiny_vit_files, tiny_rn_files, trained_run
):
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    ws = tmp_path / "ws"
    ws.mkdir()
    vit, rn = tiny_vit_files, tiny_rn_files
    ctx = Ctx(
        ws, tiny_folder, trained_run, ["--backbone", str(vit[0]), "--pretrained", str(vit[1])],
        ["--backbone", str(rn[0]), "--pretrained", str(rn[1])], monkeypatch,
    )  # fmt: skip
    argv = case.argv(ctx)
    before = snapshot(ws, skip=("split_fewshot",))
    code, err, lines = run_cli(argv, capsys)
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2, err
    assert "Traceback" not in err and len(errors) == 1 and lines[-1] == errors[0], err
    assert case.writes or len(lines) == 1, err  # a refusal before any work prints nothing else (no progress)
    assert case.expect in errors[0], errors[0]
    before, after = _users(before), _users(snapshot(ws, skip=("split_fewshot",)))
    assert ({k: v for k, v in after.items() if k in before} if case.writes else after) == before
