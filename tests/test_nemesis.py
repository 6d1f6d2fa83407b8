"""Nemesis add-on (PUN/PAN, ω, pre-inference rule), corruption experiments and norm plots."""

import csv
import json
import math
from types import SimpleNamespace

import pytest
import torch

from vlprompt.addons.nemesis.model import (
    NemesisAddOn,
    NemesisConfig,
    matrix_norm,
    omega,
    parse_num_positions,
    position_norms,
    weighted_norm,
)
from vlprompt.analysis.corruption import corrupt_position, summarize
from vlprompt.cli import main
from vlprompt.errors import VLPromptError
from vlprompt.methods.base import PromptLearner
from vlprompt.task import LabelSpace, Output, StepInfo

# rows with L2 norms 5, 1, 2; L1 norms 7, 1, 2; L∞ norms 4, 1, 2
GENERIC = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]])
CSC = torch.stack([GENERIC, 2 * GENERIC])  # [K=2, M=3, D=2]; class 1 has doubled norms


@pytest.mark.parametrize("norm_type,norms", [("two", [5, 1, 2]), ("one", [7, 1, 2]), ("inf", [4, 1, 2])])
def test_pun_and_pan_match_hand_computed_values(norm_type, norms):
    assert position_norms(GENERIC, norm_type).tolist() == pytest.approx(norms)
    total = sum(norms)
    # PUN: a_j = A for all j -> A · mean_j ‖c_j‖
    assert float(weighted_norm(GENERIC, torch.full((3,), 2.0), norm_type)) == pytest.approx(2 * total / 3)
    # PAN: divide by the number of non-zero weights (2), not by M
    a = torch.tensor([2.0, 0.0, 2.0])
    assert float(weighted_norm(GENERIC, a, norm_type)) == pytest.approx((2 * norms[0] + 2 * norms[2]) / 2)
    assert float(weighted_norm(GENERIC, torch.zeros(3), norm_type)) == 0.0  # max(1, 0) normaliser
    # CSC: the numerator sums over classes (K times a per-class mean), the normaliser still counts positions
    assert float(weighted_norm(CSC, torch.ones(3), norm_type)) == pytest.approx(3 * total / 3)
    assert float(weighted_norm(CSC, a, norm_type)) == pytest.approx(3 * (2 * norms[0] + 2 * norms[2]) / 2)


def test_matrix_norm_and_omega():
    assert float(matrix_norm(GENERIC, "two")) == pytest.approx(math.sqrt(30))
    assert float(matrix_norm(GENERIC, "one")) == pytest.approx(6)  # max column abs sum
    assert float(matrix_norm(GENERIC, "inf")) == pytest.approx(7)  # max row abs sum
    assert float(matrix_norm(CSC, "two")) == pytest.approx(1.5 * math.sqrt(30))  # mean over classes
    assert omega(100, 200) == pytest.approx(0.5)
    assert omega(0, 200) == pytest.approx(1.0, abs=1e-8)
    assert omega(5, 10) == pytest.approx(0.5) and omega(9, 10) == pytest.approx(1 - 1 / (1 + math.exp(-0.8)))
    assert omega(123, 10, "constant") == 1.0


def test_num_positions_parsing():
    assert parse_num_positions(3) == (3, False)
    assert parse_num_positions("random2") == (2, True)
    for bad in (None, "0", "randomx", "two"):
        with pytest.raises(VLPromptError, match="nemesis.num_positions"):
            parse_num_positions(bad)


# ---------------------------------------------------------------------------- PAN pre-inference rule
class FakeLearner(PromptLearner):
    """M = 4 positions; the fake task below predicts better exactly when row 2 is rescaled."""

    name = "fake"

    @classmethod
    def capabilities(cls, config, backbone):
        return frozenset({"prompt_vectors"} | ({"class_token_end"} if config.class_token_position == "end" else set()))

    def __init__(self, position="end"):
        super().__init__(None, SimpleNamespace(class_token_position=position), LabelSpace(["a", "b"]))
        self.ctx = torch.nn.Parameter(torch.ones(4, 3))

    def prompt_vectors(self):
        return {"ctx": self.ctx}


class FakeTask:
    """Labels are all 0; n correct = 3 with row 2 shrunk, 2 (= n_0) with row 1 shrunk, else 1."""

    def __init__(self, position="end"):
        self.learner = FakeLearner(position)
        self.calls = 0

    def forward(self, images=None, image_features=None):
        self.calls += 1
        row_sums = self.learner.param("ctx").detach().abs().sum(-1)
        correct = 3 if row_sums[2] < 3 else 2 if row_sums[1] < 3 else 1
        logits = torch.tensor([[1.0, 0.0]] * correct + [[0.0, 1.0]] * (4 - correct))
        return Output(image=image_features, text=None, logits=logits)


def _addon(task, **cfg):
    return NemesisAddOn(task, NemesisConfig(**{"weight": 10.0, **cfg}))


def _out(correct=2):
    logits = torch.tensor([[1.0, 0.0]] * correct + [[0.0, 1.0]] * (4 - correct))
    return Output(image=torch.zeros(4, 2), text=None, logits=logits, image_raw=torch.zeros(4, 2))


def test_pan_weights_only_strictly_better_positions():
    task = FakeTask()
    addon = _addon(task, beta=0.0, num_positions=4, corruption_weight=0.5, pan_weight=7.0, omega_schedule="constant")
    labels = torch.zeros(4, dtype=torch.long)
    out = _out(correct=2)  # n_0 = 2
    a = addon.pan_weights(task.learner.prompt_vectors(), out, labels)["ctx"]
    assert a.tolist() == [0.0, 0.0, 7.0, 0.0]  # row 1 ties n_0 (not strictly better): 0
    assert task.calls == 4 and float(task.learner.param("ctx").detach().sum()) == 12.0  # overrides undone
    loss = addon.losses(out, labels, StepInfo(epoch=0, num_epochs=2))["nemesis"]
    assert float(loss.detach()) == pytest.approx(7.0 * math.sqrt(3))  # N(a) = s ‖c_2‖ / 1, ω ≡ 1
    loss.backward()
    assert task.learner.ctx.grad[2].abs().sum() > 0 and task.learner.ctx.grad[0].abs().sum() == 0
    metrics = addon.epoch_metrics()
    assert metrics["alpha_2"] == 7.0 and metrics["alpha_0"] == 0.0 and metrics["omega"] == 1.0
    assert metrics["v0_norm"] == pytest.approx(math.sqrt(3)) and addon.epoch_metrics() == {}


def test_mixed_objective_and_random_positions():
    task = FakeTask()
    labels = torch.zeros(4, dtype=torch.long)
    addon = _addon(task, beta=0.25, num_positions="random2")
    torch.manual_seed(0)
    terms = addon.losses(_out(), labels, StepInfo(epoch=1, num_epochs=2))
    assert task.calls == 0  # random<N>: no pre-inference
    # PUN = 10 · √3 ; PAN = 10 · (2 √3) / 2 = 10 √3 ; ω(1, 2) = 0.5
    assert float(terms["nemesis"].detach()) == pytest.approx(0.5 * (0.25 + 0.75) * 10 * math.sqrt(3))
    alphas = [v for k, v in addon.epoch_metrics().items() if k.startswith("alpha_")]
    assert sorted(alphas) == [0.0, 0.0, 10.0, 10.0]


def test_check_rejects_incomplete_settings():
    assert "nemesis.weight is required" in NemesisAddOn(FakeTask(), NemesisConfig(weight=None)).check()
    assert NemesisAddOn(FakeTask(), NemesisConfig()).check() is None  # the documented default: PUN, A = 1
    assert "corruption_weight" in _addon(FakeTask(), beta=0.5, num_positions=2).check()
    reason = _addon(FakeTask("middle"), beta=0.0, num_positions=2, corruption_weight=0.5).check()
    assert "class_token_position end" in reason
    assert _addon(FakeTask("middle"), beta=0.0, num_positions="random2").check() is None
    assert _addon(FakeTask()).check() is None
    with pytest.raises(VLPromptError, match="norm_type"):
        _addon(FakeTask(), norm_type="two-ish").check()


# ---------------------------------------------------------------------------- corruption pieces
def test_corrupt_position_operations():
    ctx = CSC.clone()
    zero = corrupt_position(ctx, "replace", 1, 0.0)
    assert zero[:, 1].abs().sum() == 0 and torch.equal(zero[:, 0], ctx[:, 0])
    noise = corrupt_position(ctx, "replace", 1, 0.5, seed=3)
    assert torch.equal(noise, corrupt_position(ctx, "replace", 1, 0.5, seed=3))
    assert not torch.equal(noise[0, 1], noise[1, 1])  # independent per class
    assert torch.equal(corrupt_position(ctx, "scale", 0, 0.5)[:, 0], 0.5 * ctx[:, 0])
    assert torch.equal(corrupt_position(ctx, "original", 0, 0.5), ctx) and torch.equal(ctx, CSC)


def test_summary_counts_low_norm_effect():
    rows = [{"op": "original", "pos": "", "weight": "", "accuracy": 50.0, "delta": 0.0, "norm_ratio": 1.0}]
    for pos, (w, delta) in enumerate([(0.5, 2.0), (0.5, -1.0), (0.1, 4.0), (2.0, 1.0)]):
        rows.append({"op": "scale", "pos": pos, "weight": w, "accuracy": 50 + delta, "delta": delta, "norm_ratio": w})
    groups = {g["group"]: g for g in summarize(rows)}
    reduced = groups["norm reduced"]
    assert (reduced["corruptions"], reduced["raised"], reduced["fraction"]) == (3, 2, pytest.approx(2 / 3))
    assert reduced["mean_gain"] == pytest.approx(3.0) and reduced["max_gain"] == 4.0
    assert groups["weight=0.5"]["raised"] == 1 and groups["norm increased"]["raised"] == 1


# ---------------------------------------------------------------------------- CLI end to end
@pytest.fixture(scope="module")
def nemesis_run(tmp_path_factory, tiny_vit_files, tiny_folder):
    root = tmp_path_factory.mktemp("nemesis")
    cfg, weights = tiny_vit_files
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VLPROMPT_CACHE", str(root / "cache"))
        out = root / "run"
        code = main(
            [
                "train",
                "--method",
                "coop+nemesis",
                "--dataset",
                "folder",
                "--data-root",
                str(tiny_folder),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--lr",
                "0.01",
                "--eval-every",
                "1",
                "--backbone",
                str(cfg),
                "--pretrained",
                str(weights),
                "--set",
                "coop.n_ctx=4",
                "--set",
                "nemesis.weight=1",
                "--set",
                "nemesis.beta=0.5",
                "--set",
                "nemesis.num_positions=2",
                "--set",
                "nemesis.corruption_weight=0.5",
            ]
        )
        assert code == 0
        yield out, ["--dataset", "folder", "--data-root", str(tiny_folder)]


def test_train_logs_per_position_norms(nemesis_run):
    out, _ = nemesis_run
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
    assert len(epochs) == 2
    for record in epochs:
        for key in ("v0_norm", "v3_norm", "alpha_0", "alpha_3", "matrix_norm", "omega", "nemesis", "test_accuracy"):
            assert key in record, key
    assert epochs[0]["omega"] == pytest.approx(omega(0, 2))


def test_bare_nemesis_runs_with_documented_defaults(tmp_path, cli_env, tiny_folder, capsys):
    code = main(["train", "--method", "coop+nemesis", "--dataset", "folder", "--data-root", str(tiny_folder),
                 "--out", str(tmp_path / "r"), "--epochs", "1", "--set", "coop.n_ctx=4", *cli_env])  # fmt: skip
    assert code == 0
    config = (tmp_path / "r" / "config.yaml").read_text()
    assert "weight: 1.0" in config and "beta: 1.0" in config
    assert "preset nemesis:fewshot" in config  # the source of the default is recorded


def test_corrupt_single_operations(nemesis_run, tmp_path):
    out, data = nemesis_run
    trained = json.loads((out / "results.json").read_text())["accuracy"]
    results = {}
    for op, extra in [
        ("original", []),
        ("scale", ["--pos", "1", "--weight", "1"]),
        ("replace", ["--pos", "2", "--weight", "0"]),
    ]:
        dest = tmp_path / op
        assert main(["corrupt", "--run", str(out), *data, "--op", op, *extra, "--out", str(dest)]) == 0
        results[op] = json.loads((dest / "results.json").read_text())
    assert results["original"]["accuracy"] == trained == results["scale"]["accuracy"]
    assert results["scale"]["corruption"]["norm_ratio"] == pytest.approx(1.0)
    replace = results["replace"]["corruption"]
    assert replace["op"] == "replace" and replace["pos"] == 2 and replace["pos_norm_after"] == 0.0
    assert replace["norm_after"] < replace["norm_before"]


def test_corrupt_sweep_writes_csv_summary_and_plot(nemesis_run, tmp_path, capsys):
    out, data = nemesis_run
    dest = tmp_path / "sweep"
    assert (
        main(
            [
                "corrupt",
                "--run",
                str(out),
                *data,
                "--sweep",
                "--positions",
                "all",
                "--weights",
                "0,0.5,2",
                "--op",
                "scale",
                "--out",
                str(dest),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((dest / "sweep.csv").open()))
    assert len(rows) == 1 + 4 * 3 and rows[0]["op"] == "original"
    assert sorted({round(float(r["norm_ratio"]), 6) for r in rows[1:]}) == [0.0, 0.5, 2.0]
    summary = json.loads((dest / "summary.json").read_text())
    assert [g["group"] for g in summary["groups"]][-2:] == ["norm reduced", "norm increased"]
    assert "norm reduced" in capsys.readouterr().out
    assert (dest / "norms.png").stat().st_size > 1000


def test_corrupt_rejects_bad_position(nemesis_run, tmp_path, capsys):
    out, data = nemesis_run
    code = main(
        [
            "corrupt",
            "--run",
            str(out),
            *data,
            "--op",
            "scale",
            "--pos",
            "9",
            "--weight",
            "0.5",
            "--out",
            str(tmp_path / "bad"),
        ]
    )
    assert code == 2 and "--pos 9 is outside 0..3" in capsys.readouterr().err
