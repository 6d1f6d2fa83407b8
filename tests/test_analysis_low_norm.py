"""`vlprompt analyze low-norm SWEEP_ROOT` on a toy few-shot sweep of coop and coop+nemesis (2 seeds)."""

import csv
import json

import pytest

from vlprompt.cli import main

FAST = ["--set", "train.epochs=1", "--set", "train.batch_size=32"]
# one position, norm-reducing replacement and a norm-increasing rescaling: every count has data, quickly
GRID = ["--positions", "0", "--replace-weights", "0", "--scale-weights", "0.5,2"]


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("VLPROMPT_CACHE", str(tmp_path_factory.mktemp("cache")))
    root = tmp_path_factory.mktemp("lownorm")
    cmd = ["sweep", "--protocol", "fewshot", "--datasets", "toy", "--methods", "coop", "coop+nemesis", "zeroshot"]
    assert main([*cmd, "--seeds", "1", "2", "--shots", "1", *FAST, "--root", str(root), "-q"]) == 0
    assert main(["analyze", "low-norm", str(root), *GRID]) == 0
    yield root
    mp.undo()


def hand_count(root):
    """(method folder, dataset, shots) -> [reduced, improved, increased, hurt] read straight from sweep.csv."""
    counts = {}
    for path in root.glob("fewshot/*/*/shots*/seed*/low-norm-*/sweep.csv"):
        method, dataset, shots = path.parts[-6], path.parts[-5], path.parts[-4]
        c = counts.setdefault((method.replace("_", "+"), dataset, shots[5:]), [0, 0, 0, 0])
        for row in csv.DictReader(path.read_text().splitlines()):
            if row["op"] == "original":
                continue
            ratio, delta = float(row["norm_ratio"]), float(row["delta"])
            if ratio < 1:
                c[0] += 1
                c[1] += delta > 0
            if ratio > 1:
                c[2] += 1
                c[3] += delta < 0
    return counts


@pytest.mark.slow
def test_frequencies_equal_a_hand_count_of_the_per_run_results(sweep_root):
    runs = sorted(p.parent.relative_to(sweep_root).as_posix() for p in sweep_root.rglob("low-norm-*/summary.json"))
    assert len(runs) == 8  # 2 methods × 2 seeds × 2 operations; zero-shot CLIP has no prompt to corrupt
    assert not list(sweep_root.glob("fewshot/zeroshot/*/*/*/low-norm-*"))
    rows = list(csv.DictReader((sweep_root / "low-norm.csv").read_text().splitlines()))
    assert [(r["method"], r["dataset"], r["shots"]) for r in rows] == [
        ("coop", "toy-b2n", "1"),
        ("coop+nemesis", "toy-b2n", "1"),
    ]
    expected = hand_count(sweep_root)
    for r in rows:
        got = [int(r[k]) for k in ("reduced", "improved", "increased", "hurt")]
        assert got == expected[(r["method"], r["dataset"], r["shots"])]
        assert r["runs"] == "2"
        # per run: 1 position × (replace σ=0 reduces, scale 0.5 reduces, scale 2 increases)
        assert got[0] == 2 * 2 and got[2] == 2 * 1
        if got[0]:
            assert r["improved %"] == f"{100 * got[1] / got[0]:.1f}"
    assert "| coop+nemesis | toy-b2n |" in (sweep_root / "low-norm.md").read_text()


@pytest.mark.slow
def test_rerun_computes_nothing_and_plot_draws_the_figure(sweep_root, capsys):
    before = {p: p.stat().st_mtime_ns for p in sweep_root.rglob("low-norm-*/*")}
    capsys.readouterr()
    assert main(["analyze", "low-norm", str(sweep_root), *GRID]) == 0
    err = capsys.readouterr().err
    assert "8 already done, 0 ran" in err
    assert {p: p.stat().st_mtime_ns for p in sweep_root.rglob("low-norm-*/*")} == before
    out = sweep_root / "figs"
    assert main(["plot", str(sweep_root), "--out", str(out)]) == 0
    assert (out / "low_norm.png").stat().st_size > 1000
    assert str(out / "low_norm.png") in capsys.readouterr().out


@pytest.mark.slow
def test_other_settings_are_refused_not_mixed(sweep_root, capsys):
    assert main(["analyze", "low-norm", str(sweep_root), "--positions", "0", "--replace-weights", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "holds a corruption sweep with weights '0', not '0.1'" in err and err.count("\n") == 1


def test_bad_inputs_are_one_line(tmp_path, capsys):
    assert main(["analyze", "low-norm", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["analyze", "low-norm", str(tmp_path)]) == 2
    assert "no finished training run with a prompt tensor" in capsys.readouterr().err
    assert main(["analyze", "low-norm", str(tmp_path), "--scale-weights", "x"]) == 2
    assert "--weights 'x'" in capsys.readouterr().err


@pytest.mark.slow
def test_uncorrupted_accuracy_is_the_training_runs_test_accuracy(sweep_root):
    for path in sweep_root.rglob("low-norm-*/summary.json"):
        summary = json.loads(path.read_text())
        trained = json.loads((path.parent.parent / "train" / "results.json").read_text())
        assert summary["tensor"] == "ctx" and summary["original_accuracy"] == pytest.approx(trained["accuracy"])
