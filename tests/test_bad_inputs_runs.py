"""The second catalogue of bad inputs, about what runs leave behind and what reads them: sweeps (a changed plan, a
bad setting, a foreign root), tables and figures (damaged results, runs of different settings, files a user made),
``convert`` (a checkpoint that does not fit the data flags, non-finite or malformed tensors), ``--init-from`` (its
content) and hints that must lead to a working re-run.

As in ``test_bad_inputs.py``: every case ends in exit status 2 and one line ``error: ...`` holding the expected
text (``<ws>`` stands for the workspace), and leaves every file of its workspace as it was (``writes``: a run had started writing its own new files,
only the files that existed before must be unchanged). A few cases are a correct result instead, each its own test
at the end. The sweep cases copy one finished toy sweep (coop, base-to-new, seed 1, one epoch).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from cli_runs import run_cli, snapshot, train_argv
from vlprompt.cli import main

SWEEP = ["sweep", "--protocol", "b2n", "--datasets", "toy", "--methods", "coop", "--seeds", "1"]
FAST = ["--set", "train.epochs=1", "--set", "train.batch_size=32"]
TRAIN = "b2n/coop/toy-b2n/shots16/seed1/train"
NEW = "b2n/coop/toy-b2n/shots16/seed1/eval-new"
WIDTH, CONTEXT = 64, 77  # the tiny ViT's text width and context length


@pytest.fixture(scope="session")
def toy_sweep(tmp_path_factory):
    """A finished base-to-new sweep of CoOp on the toy world (read-only: cases copy it), and its cache."""
    root = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLPROMPT_CACHE", str(root / "cache"))
        assert main([*SWEEP, *FAST, "--root", str(root / "sweep"), "-q"]) == 0
    return root / "sweep", root / "cache"


@dataclass
class Ctx:
    ws: Path
    folder: Path
    run: Path
    bb: List[str]
    sweep: Path
    mp: pytest.MonkeyPatch

    def sweep_copy(self, name: str = "sweep") -> Path:
        return Path(shutil.copytree(self.sweep, self.ws / name))

    def rerun(self, *extra: str, root: Path = None) -> List[str]:
        """The fixture's sweep command (with ``extra``) on a copy of the sweep (or on ``root``)."""
        return [*SWEEP, *FAST, *extra, "--root", str(root or self.sweep_copy())]

    def file(self, name: str, text: str = "the user's own file\n") -> Path:
        path = self.ws / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def folder_flags(self) -> List[str]:
        return ["--dataset", "folder", "--data-root", str(self.folder), *self.bb]


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], List[str]]
    expect: str
    writes: bool = False


# ---------------------------------------------------------------------------------------------- helpers
def _edit_json(path: Path, change: Callable[[Dict], object]) -> None:
    data = json.loads(path.read_text())
    result = change(data)
    path.write_text(json.dumps(data if result is None else result))


def _marker(run: Path, change: Callable[[Dict], None]) -> None:
    _edit_json(run / ".vlprompt-run.json", change)


def _results(ctx: Ctx, change: Callable[[Dict], object], command: str = "table") -> List[str]:
    root = ctx.sweep_copy()
    _edit_json(root / TRAIN / "results.json", change)
    return [command, str(root)]


def _second_seed(ctx: Ctx, change_marker=None, change_results=None) -> List[str]:
    """The sweep with its seed-1 runs copied as seed 2, then changed."""
    root = ctx.sweep_copy()
    shutil.copytree(root / "b2n/coop/toy-b2n/shots16/seed1", root / "b2n/coop/toy-b2n/shots16/seed2")
    seed2 = root / "b2n/coop/toy-b2n/shots16/seed2/train"
    _marker(seed2, lambda m: m["identity"]["data"].update(seed=2))
    if change_marker:
        _marker(seed2, change_marker)
    if change_results:
        _edit_json(seed2 / "results.json", change_results)
    return ["table", str(root)]


def _table_then(ctx: Ctx, then: Callable[[Path], Path]) -> List[str]:
    """``vlprompt table`` once (it writes summary.csv), then ``then(root)`` gives the folder to table again."""
    root = ctx.sweep_copy()
    assert main(["table", str(root)]) == 0
    return ["table", str(then(root))]


def _checkpoint(ctx: Ctx, ctx_tensor, classes: int = 4) -> Path:
    """A CoOp Dassl checkpoint (the prompt learner's state dict: ctx and the class buffers of ``classes``)."""
    import torch

    n = ctx_tensor.shape[0] if ctx_tensor.dim() == 2 else 0
    state = {
        "ctx": ctx_tensor,
        "token_prefix": torch.randn(classes, 1, WIDTH),
        "token_suffix": torch.randn(classes, CONTEXT - 1 - n, WIDTH),
    }
    path = ctx.ws / "ckpt" / "prompt_learner" / "model.pth.tar-5"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": state, "epoch": 5, "optimizer": {}, "scheduler": {}, "val_result": None}, path)
    return path


def _convert(ctx: Ctx, ctx_tensor, *extra: str, classes: int = 4) -> List[str]:
    path = _checkpoint(ctx, ctx_tensor, classes)
    return ["convert", str(path), "--out", str(ctx.ws / "converted"), *ctx.folder_flags(), *extra]


def _randn(*shape):
    import torch

    return torch.randn(*shape)


def _nan_ctx():
    import torch

    t = torch.randn(4, WIDTH)
    t[1, 3] = float("nan")
    t[2, 0] = float("inf")
    return t


def _init_from_changed(ctx: Ctx) -> List[str]:
    """A run trained from a starting-values file, whose content then changed (same path)."""
    from safetensors.torch import load_file, save_file

    init = ctx.ws / "init.safetensors"
    shutil.copy(ctx.run / "weights.safetensors", init)
    argv = train_argv(ctx.ws / "out", ctx.folder, ctx.bb, "--init-from", str(init), "-q")
    assert main(argv) == 0
    tensors = load_file(str(init))
    save_file({k: v + 1 for k, v in tensors.items()}, str(init))
    return argv


def _unreadable_test_image(ctx: Ctx) -> List[str]:
    data = Path(shutil.copytree(ctx.folder, ctx.ws / "data"))
    (data / "test" / "red_circle" / "red_circle_0.png").write_bytes(b"not a png")
    return train_argv(ctx.ws / "out", data, ctx.bb)


def _no_write_access(ctx: Ctx, target: Path) -> None:
    import os

    real = os.access
    ctx.mp.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == target else real(path, mode, **kw))


def _no_matplotlib(ctx: Ctx) -> List[str]:
    ctx.mp.setitem(sys.modules, "matplotlib", None)
    return ["plot", str(ctx.sweep)]


CASES = [
    # ---------------------------------------------------------------- sweeps: a changed plan
    Case("sweep-other-epochs", lambda c: c.rerun("--set", "train.epochs=2"), "train.epochs: 1 there, 2 now"),
    Case(
        "sweep-other-n-ctx",
        lambda c: c.rerun("--set", "coop.n_ctx=2", "--set", "coop.ctx_init="),
        f"{TRAIN} was run with other settings (components.coop.n_ctx: 4 there, 2 now)",
    ),
    Case(
        "sweep-other-backbone",
        lambda c: c.rerun("--backbone", "toy", "--pretrained", "none"),
        "(backbone.pretrained: None there, 'none' now)",
    ),
    Case(
        "sweep-other-template",
        lambda c: c.rerun("--template", "a toy {}."),
        "data.template: '<absent>' there, 'a toy {}.' now",
    ),
    Case("sweep-dry-run-other-plan", lambda c: c.rerun("--set", "train.epochs=3", "--dry-run"), "train.epochs"),
    Case(
        "sweep-eval-other-settings",
        lambda c: (
            lambda root: (_marker(root / NEW, lambda m: m["identity"].update(label_space="seen")), c.rerun(root=root))
        )(c.sweep_copy())[1],
        f"{NEW} was run with other settings (label_space: 'seen' there, 'auto' now)",
    ),
    Case(
        "sweep-eval-of-unfinished-training",
        lambda c: (lambda root: ((root / TRAIN / "results.json").unlink(), c.rerun(root=root)))(c.sweep_copy())[1],
        f"{NEW} holds the results of a training run that is not finished ({TRAIN})",
    ),
    Case(
        "sweep-job-of-another-kind",
        lambda c: (lambda root: (_marker(root / TRAIN, lambda m: m.update(kind="zeroshot")), c.rerun(root=root)))(
            c.sweep_copy()
        )[1],
        "holds a `vlprompt zeroshot` run, not the planned train run",
    ),
    Case(
        "sweep-job-folder-with-user-files",
        lambda c: (c.file(f"fresh/{TRAIN}/notes.txt"), c.rerun(root=c.ws / "fresh"))[1],
        "holds files that are not a vlprompt run; move them away",
    ),
    # ---------------------------------------------------------------- sweeps: bad settings, once, nothing started
    Case("sweep-unknown-set-key", lambda c: c.rerun("--set", "coop.nope=1"), "unknown setting coop.nope"),
    Case(
        "sweep-bad-set-value-fresh-root",
        lambda c: c.rerun("--set", "coop.n_ctx=many", root=c.ws / "new"),
        "coop.n_ctx=many: expected an int",
    ),
    Case(
        "sweep-method-trailing-plus",
        lambda c: [*SWEEP[:-3], "coop+", *SWEEP[-2:], "--root", str(c.ws / "n")],
        "'coop+'",
    ),
    Case("sweep-bad-template", lambda c: c.rerun("--template", "a {} {}", root=c.ws / "n"), "--template 'a {} {}'"),
    Case(
        "sweep-templates-file-without-braces",
        lambda c: c.rerun("--templates", str(c.file("t.txt", "a photo\n")), root=c.ws / "n"),
        "t.txt line 1 'a photo'",
    ),
    Case(
        "sweep-templates-file-missing",
        lambda c: c.rerun("--templates", str(c.ws / "gone.txt"), root=c.ws / "n"),
        "gone.txt not found",
    ),
    Case(
        "sweep-classnames-file-malformed",
        lambda c: c.rerun("--classnames", str(c.file("names.json", "{")), root=c.ws / "n"),
        "names.json is not valid JSON",
    ),
    Case(
        "sweep-classnames-file-missing",
        lambda c: c.rerun("--classnames", str(c.ws / "names.txt"), root=c.ws / "n"),
        "<ws>/names.txt not found",
    ),
    # ---------------------------------------------------------------- sweeps: the root
    Case(
        "sweep-root-in-a-read-only-folder",
        lambda c: (_no_write_access(c, c.ws / "ro"), (c.ws / "ro").mkdir(), c.rerun(root=c.ws / "ro" / "sweep"))[2],
        "--root <ws>/ro/sweep: cannot write in <ws>/ro (permission denied)",
    ),
    Case(
        "sweep-root-is-a-run",
        lambda c: c.rerun(root=Path(shutil.copytree(c.run, c.ws / "run"))),
        "is a vlprompt run directory, not a sweep folder",
    ),
    Case("sweep-root-is-a-file", lambda c: c.rerun(root=c.file("root.txt")), "root.txt is a file"),
    Case(
        "sweep-root-with-unrelated-files",
        lambda c: (c.file("mine/notes.txt"), c.rerun(root=c.ws / "mine"))[1],
        "holds notes.txt, which is not part of a vlprompt sweep",
    ),
    Case(
        "sweep-root-with-a-user-summary-csv",
        lambda c: (lambda root: (c.file("sweep/summary.csv"), c.rerun(root=root)))(c.sweep_copy())[1],
        "holds summary.csv, which is not part of a vlprompt sweep",
    ),
    # ---------------------------------------------------------------- table / plot: damaged results
    Case(
        "table-results-truncated",
        lambda c: (lambda r: ((r / TRAIN / "results.json").write_text('{"accuracy": 4'), ["table", str(r)]))(
            c.sweep_copy()
        )[1],
        f"cannot read <ws>/sweep/{TRAIN}/results.json",
    ),
    Case("table-results-no-accuracy", lambda c: _results(c, lambda d: d.pop("accuracy")), "no finite accuracy (None)"),
    Case("table-results-string", lambda c: _results(c, lambda d: d.update(accuracy="41.5")), "accuracy ('41.5')"),
    Case("table-results-nan", lambda c: _results(c, lambda d: d.update(accuracy=float("nan"))), "accuracy (nan)"),
    Case("table-results-a-bool", lambda c: _results(c, lambda d: d.update(accuracy=True)), "accuracy (True)"),
    Case("table-results-a-list", lambda c: _results(c, lambda d: [1, 2]), f"{TRAIN}/results.json holds no finite"),
    Case("plot-results-nan", lambda c: _results(c, lambda d: d.update(accuracy=float("inf")), "plot"), "(inf)"),
    Case(
        "plot-metrics-truncated",
        lambda c: (lambda r: ((r / TRAIN / "metrics.jsonl").write_text('{"epoch": 1, "loss"'), ["plot", str(r)]))(
            c.sweep_copy()
        )[1],
        f"{TRAIN}/metrics.jsonl is damaged",
    ),
    Case("plot-without-matplotlib", _no_matplotlib, "vlprompt plot needs matplotlib: pip install 'vlprompt[plot]'"),
    # ---------------------------------------------------------------- table: runs of different settings
    Case(
        "table-seeds-other-settings",
        lambda c: _second_seed(c, change_marker=lambda m: m["identity"]["train"].update(epochs=5)),
        "seed2/train were run with different settings (train.epochs: 1 and 5)",
    ),
    Case(
        "table-seeds-other-backbones",
        lambda c: _second_seed(c, change_results=lambda d: d.update(backbone="ViT-B-16", pretrained="openai")),
        "were run with different backbones (backbone: 'toy' and 'ViT-B-16')",
    ),
    # ---------------------------------------------------------------- files a user made, outside run directories
    Case(
        "table-over-a-user-summary-csv",
        lambda c: (lambda r: (c.file("sweep/b2n/coop/summary.csv"), ["table", str(r)]))(c.sweep_copy())[1],
        "b2n/coop/summary.csv exists and is not a file vlprompt wrote for",
    ),
    Case(
        "table-over-its-summary-edited",
        lambda c: _table_then(c, lambda r: (c.file("sweep/b2n/coop/summary.csv", "edited\n"), r)[1]),
        "summary.csv exists and is not a file vlprompt wrote for",
    ),
    Case(
        "table-over-another-sweeps-summary",
        lambda c: _table_then(c, lambda r: Path(shutil.copytree(r, c.ws / "other"))),
        "other/b2n/coop/summary.csv exists and is not a file vlprompt wrote for <ws>/other",
    ),
    Case(
        "table-sidecar-not-ours",
        lambda c: (lambda r: (c.file("sweep/b2n/coop/.vlprompt-outputs.json", "[]"), ["table", str(r)]))(
            c.sweep_copy()
        )[1],
        ".vlprompt-outputs.json is not vlprompt's record of the files it wrote there",
    ),
    Case(
        "plot-over-a-user-png",
        lambda c: ["plot", str(c.sweep), "--out", str(c.file("figs/b2n.png").parent)],
        "figs/b2n.png exists and is not a file vlprompt wrote for",
    ),
    Case(
        "plot-over-its-figure-edited",
        lambda c: (lambda r: (main(["plot", str(r)]), c.file("sweep/plots/b2n.png", "edited"), ["plot", str(r)]))(
            c.sweep_copy()
        )[2],
        "<ws>/sweep/plots/b2n.png exists and is not a file vlprompt wrote for <ws>/sweep",
    ),
    Case(
        "plot-out-is-a-file",
        lambda c: ["plot", str(c.sweep), "--out", str(c.file("figs.png"))],
        "--out <ws>/figs.png is a file; give a folder for the figures",
    ),
    Case(
        "plot-into-another-sweeps-figures",
        lambda c: (
            lambda r: (
                main(["plot", str(r), "--out", str(c.ws / "figs")]),
                ["plot", str(c.sweep), "--out", str(c.ws / "figs")],
            )
        )(c.sweep_copy())[1],
        "figs/b2n.png exists and is not a file vlprompt wrote for",
    ),
    Case(
        "demo-over-a-user-summary-csv",
        lambda c: ["demo", "--quick", "--out", str(c.file("d/summary.csv").parent)],
        "d/summary.csv exists and is not a file vlprompt wrote for",
    ),
    Case(
        "plot-out-in-a-run-directory",
        lambda c: ["plot", str(c.sweep), "--out", str(Path(shutil.copytree(c.run, c.ws / "run")) / "figs")],
        "--out <ws>/run/figs is inside the run directory <ws>/run",
    ),
    Case(
        "plot-out-below-a-file",
        lambda c: ["plot", str(c.sweep), "--out", str(c.file("f.txt")) + "/figs"],
        "<ws>/f.txt is a file, not a folder",
    ),
    Case(
        "table-summary-csv-is-a-folder",
        lambda c: (lambda r: ((r / "b2n/coop/summary.csv").mkdir(), ["table", str(r)]))(c.sweep_copy())[1],
        "cannot write <ws>/sweep/b2n/coop/summary.csv: it is a folder",
    ),
    Case(
        "table-results-is-a-folder",
        lambda c: (
            lambda r: ((r / TRAIN / "results.json").unlink(), (r / TRAIN / "results.json").mkdir(), ["table", str(r)])
        )(c.sweep_copy())[2],
        f"cannot read <ws>/sweep/{TRAIN}/results.json",
    ),
    Case(
        "table-damaged-run-marker",
        lambda c: (lambda r: ((r / TRAIN / ".vlprompt-run.json").write_text("{"), ["table", str(r)]))(c.sweep_copy())[
            1
        ],
        f"<ws>/sweep/{TRAIN}/.vlprompt-run.json is damaged",
    ),
    Case(
        "sweep-job-path-is-a-file",
        lambda c: (c.file(f"fresh/{TRAIN}"), c.rerun(root=c.ws / "fresh"))[1],
        f"<ws>/fresh/{TRAIN} is a file where the sweep puts a run directory",
    ),
    Case(
        "demo-out-is-a-run",
        lambda c: ["demo", "--quick", "--out", str(shutil.copytree(c.run, c.ws / "run"))],
        "--root <ws>/run is a vlprompt run directory, not a sweep folder",
    ),
    # ---------------------------------------------------------------- convert
    Case(
        "convert-ten-class-checkpoint",
        lambda c: _convert(c, _randn(4, WIDTH), classes=10),
        "the checkpoint was trained on 10 classes (token_prefix [10, 1, 64]), the data flags (--dataset folder "
        "--subsample all) give 4",
    ),
    Case(
        "convert-all-class-checkpoint-as-base",
        lambda c: _convert(c, _randn(4, WIDTH), "--subsample", "base"),
        "trained on 4 classes (token_prefix [4, 1, 64]), the data flags (--dataset folder --subsample base) give 2",
    ),
    Case("convert-non-finite-ctx", lambda c: _convert(c, _nan_ctx()), "learner.ctx holds 2 NaN/infinite value(s)"),
    Case("convert-1d-ctx", lambda c: _convert(c, _randn(WIDTH)), "learner.ctx has shape [64], no coop context"),
    Case(
        "convert-zero-length-ctx",
        lambda c: _convert(c, _randn(0, WIDTH)),
        "learner.ctx has shape [0, 64], no coop context",
    ),
    # ---------------------------------------------------------------- --init-from, hints
    Case(
        "init-from-content-changed",
        _init_from_changed,
        "already holds a different run (init_from_sha256:",
    ),
    Case(
        "unreadable-test-image",
        _unreadable_test_image,
        "red_circle_0.png (UnidentifiedImageError: cannot identify image file",
        writes=True,
    ),
]


def test_the_catalogue_is_large_and_unique():
    assert len(CASES) >= 32 and len({c.id for c in CASES}) == len(CASES)


@pytest.fixture
def ctx(tmp_path, monkeypatch, tiny_folder, tiny_vit_files, trained_run, toy_sweep):
    sweep, cache = toy_sweep
    monkeypatch.setenv("VLPROMPT_CACHE", str(cache))  # the toy datasets and features of the sweep
    ws = tmp_path / "ws"
    ws.mkdir()
    vit = tiny_vit_files
    return Ctx(
        ws, tiny_folder, trained_run, ["--backbone", str(vit[0]), "--pretrained", str(vit[1])], sweep, monkeypatch
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case, ctx, capsys):
    argv = case.argv(ctx)
    capsys.readouterr()
    before = snapshot(ctx.ws)
    sweep_before = snapshot(ctx.sweep)
    code, err, lines = run_cli(argv, capsys)
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2, err
    assert "Traceback" not in err and len(errors) == 1 and lines[-1] == errors[0], err
    assert case.writes or len(lines) == 1, err
    assert case.expect.replace("<ws>", str(ctx.ws)) in errors[0], errors[0]
    after = snapshot(ctx.ws)
    assert ({k: v for k, v in after.items() if k in before} if case.writes else after) == before
    assert snapshot(ctx.sweep) == sweep_before  # the shared sweep is only ever read


# ---------------------------------------------------------------------------------------------- correct results
def test_a_moved_sweep_is_done_and_vlprompt_replaces_its_own_files(ctx, capsys):
    root = ctx.sweep_copy()
    assert main(ctx.rerun(root=root)) == 0
    assert "2 jobs: 2 already done, 0 ran" in capsys.readouterr().err
    for _ in range(2):  # its own summary.csv and figures, for the same sweep, are replaced
        assert main(["table", str(root)]) == 0 and main(["plot", str(root)]) == 0
    recorded = json.loads((root / "b2n/coop/.vlprompt-outputs.json").read_text())["files"]["summary.csv"]
    assert recorded["source"] == str(root.resolve())
    assert recorded["sha256"] == hashlib.sha256((root / "b2n/coop/summary.csv").read_bytes()).hexdigest()
    assert main(ctx.rerun(root=root)) == 0  # the files table and plot wrote belong to the sweep folder


def test_convert_with_the_checkpoints_class_count(ctx):
    assert main(_convert(ctx, _randn(4, WIDTH))) == 0
    assert (ctx.ws / "converted" / "weights.safetensors").is_file()


def test_nonfinite_loss_names_the_nonfinite_setting_instead_of_the_learning_rate():
    import types

    import torch

    from vlprompt.addons.nemesis.config import NemesisConfig
    from vlprompt.config import TrainConfig
    from vlprompt.engine.trainer import check_finite, nonfinite_settings
    from vlprompt.errors import VLPromptError

    nemesis = types.SimpleNamespace(config=NemesisConfig(weight=float("nan")))
    task = types.SimpleNamespace(
        composition=types.SimpleNamespace(base="coop"), learner=types.SimpleNamespace(), addons={"nemesis": nemesis}
    )
    losses = {"nemesis": torch.tensor(float("nan"))}
    assert nonfinite_settings(task, TrainConfig()) == ["nemesis.weight=nan"]
    with pytest.raises(VLPromptError, match=r"the setting nemesis\.weight=nan is not a finite number: give it a fin"):
        check_finite(losses, 0, 0, lambda: nonfinite_settings(task, TrainConfig()))
    with pytest.raises(VLPromptError, match="lower --lr or use --precision fp32"):  # no such setting: the old advice
        check_finite(losses, 0, 0)
    check_finite({"ce": torch.tensor(1.0)}, 0, 0, lambda: ["never asked"])


def test_unreadable_test_image_replaced_then_the_same_command_finishes(ctx, capsys):
    argv = _unreadable_test_image(ctx)
    assert main(argv) == 2
    assert "replace it with a readable copy and run the same command again" in capsys.readouterr().err
    image = "test/red_circle/red_circle_0.png"
    shutil.copy(ctx.folder / image, ctx.ws / "data" / image)  # as the hint says
    assert main(argv) == 0
    assert json.loads((ctx.ws / "out" / "results.json").read_text())["num_images"] == 16


def test_restore_init_from_reference_tensors_without_calibration_ratios(ctx, tiny_vit):
    """The reference MaPLe_FSA writes its initial trainable tensors without ``text_cali_ratio`` /
    ``vis_cali_ratio``: ``--init-from`` takes them from ``restore.text_calib_r`` / ``restore.vis_calib_r``; a
    checkpoint to convert must still hold them."""
    import torch
    from safetensors.torch import save_file

    from parity.test_convert_cli import reference_state
    from vlprompt.api import create_task
    from vlprompt.convert import load_initial_values, to_vlprompt
    from vlprompt.errors import VLPromptError

    sets = ["restore.formulation=code", "maple.depth=2", "restore.text_calib_r=0.3", "restore.vis_calib_r=0.2"]
    source = create_task("maple+restore", tiny_vit, ["a", "b", "c", "d"], overrides=sets)
    state = reference_state("maple+restore", source.release_state_dict(), tiny_vit, 4)
    assert state.pop("text_cali_ratio") is not None and state.pop("vis_cali_ratio") is not None
    init = ctx.ws / "initial.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(init))
    torch.manual_seed(1)
    task = create_task("maple+restore", tiny_vit, ["a", "b", "c", "d"], overrides=sets)
    initial = load_initial_values(task, init)
    assert initial.kept == ["addons.restore.text_ratio", "addons.restore.vis_ratio"]
    own, given = task.release_state_dict(), source.release_state_dict()
    assert float(own["addons.restore.text_ratio"]) == pytest.approx(0.3)
    assert float(own["addons.restore.vis_ratio"]) == pytest.approx(0.2)
    assert all(torch.equal(own[k], given[k]) for k in initial.loaded)
    with pytest.raises(VLPromptError, match="missing text_cali_ratio, vis_cali_ratio"):
        to_vlprompt("maple+restore", state)
