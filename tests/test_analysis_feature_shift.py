"""`vlprompt analyze feature-shift SWEEP_ROOT` on a toy base-to-new sweep of three methods; Spearman's ρ."""

import csv
import json
import random

import pytest

from vlprompt.analysis.shift_sweep import discrepancy
from vlprompt.analysis.stats import pearson, ranks, spearman
from vlprompt.cli import main

FAST = ["--set", "train.epochs=1", "--set", "train.batch_size=32"]
METHODS = ["coop", "maple", "ivlp"]


@pytest.fixture(scope="module")
def b2n_root(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("VLPROMPT_CACHE", str(tmp_path_factory.mktemp("cache")))
    root = tmp_path_factory.mktemp("shift")
    cmd = ["sweep", "--protocol", "b2n", "--datasets", "toy", "--methods", *METHODS, "--seeds", "1", *FAST]
    assert main([*cmd, "--root", str(root), "-q"]) == 0
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def analysed(b2n_root):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["analyze", "feature-shift", str(b2n_root), "--max-images", "16"]) == 0
    return out.getvalue()


def rows(root):
    return list(csv.DictReader((root / "feature-shift.csv").read_text().splitlines()))


@pytest.mark.slow
def test_one_point_per_run_and_the_rank_correlation(b2n_root, analysed):
    found = rows(b2n_root)
    assert sorted(r["method"] for r in found) == sorted(METHODS)
    for r in found:
        base = json.loads((b2n_root / f"b2n/{r['method']}/toy-b2n/shots16/seed1/train/results.json").read_text())
        new = json.loads((b2n_root / f"b2n/{r['method']}/toy-b2n/shots16/seed1/eval-new/results.json").read_text())
        assert float(r["base"]) == base["accuracy"] and float(r["new"]) == new["accuracy"]
        assert float(r["H"]) == pytest.approx(
            2 * base["accuracy"] * new["accuracy"] / (base["accuracy"] + new["accuracy"])
        )
    d = [float(r["discrepancy"]) for r in found]
    rho_new = spearman(d, [float(r["new"]) for r in found])
    rho_h = spearman(d, [float(r["H"]) for r in found])
    assert f"Spearman ρ(D, new-class accuracy) = {rho_new:+.3f}" in analysed
    assert f"Spearman ρ(D, H) = {rho_h:+.3f}" in analysed
    assert (b2n_root / "plots" / "feature_shift.png").stat().st_size > 1000


@pytest.mark.slow
def test_per_run_values_equal_the_single_run_command(b2n_root, analysed, tmp_path):
    run = b2n_root / "b2n/maple/toy-b2n/shots16/seed1"
    single = tmp_path / "shift.json"
    argv = ["analyze", "feature-shift", "--run", str(run / "train"), "--dataset", "toy-b2n", "--subsample", "base"]
    assert main([*argv, "--max-images", "16", "--out", str(single), "-q"]) == 0
    cached = json.loads((run / "feature-shift" / "feature_shift.json").read_text())
    mine = json.loads(single.read_text())
    assert cached["vision"] == mine["vision"] and cached["text"] == mine["text"]
    assert cached["label_space"] == "seen" and cached["num_images"] == 16
    row = next(r for r in rows(b2n_root) if r["method"] == "maple")
    hand = sum((v - t) ** 2 for v, t in zip(mine["vision"], mine["text"]))
    assert float(row["discrepancy"]) == pytest.approx(hand)


@pytest.mark.slow
def test_rerun_computes_nothing_and_other_settings_are_refused(b2n_root, analysed, capsys):
    cached = sorted(b2n_root.rglob("feature-shift/feature_shift.json"))
    assert len(cached) == 3
    before = [p.stat().st_mtime_ns for p in cached]
    assert main(["analyze", "feature-shift", str(b2n_root), "--max-images", "16"]) == 0
    assert "3 already done, 0 ran" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in cached] == before
    assert main(["analyze", "feature-shift", str(b2n_root), "--max-images", "8"]) == 2
    assert "was measured with --norm token --max-images 16" in capsys.readouterr().err


def test_feature_shift_needs_a_sweep_or_a_run(tmp_path, capsys):
    assert main(["analyze", "feature-shift"]) == 2
    assert "needs SWEEP_ROOT, or --run DIR and --dataset NAME" in capsys.readouterr().err
    assert main(["analyze", "feature-shift", str(tmp_path), "--run", str(tmp_path)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["analyze", "feature-shift", str(tmp_path)]) == 2
    assert "no finished base-to-new training run" in capsys.readouterr().err


def test_discrepancy_is_the_consistency_loss_over_shared_blocks():
    assert discrepancy([1.0, 2.0], [0.0, 0.0, 5.0]) == 5.0
    assert discrepancy(None, [1.0]) is None


def test_ranks_and_spearman_by_hand():
    assert ranks([3, 1, 3, 2]) == [3.5, 1.0, 3.5, 2.0]
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 − 6·2/(4·15)
    assert pearson([1, 1], [1, 2]) is None and spearman([1], [2]) is None


def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    x = [rng.randint(0, 5) for _ in range(30)]  # with ties
    y = [v + rng.random() for v in x]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).correlation)
