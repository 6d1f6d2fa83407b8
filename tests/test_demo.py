"""End to end: `vlprompt demo --quick` on the offline toy world (the CI smoke run of the main job)."""

import csv
import sys

from vlprompt.cli import main
from vlprompt.demo import FEWSHOT_METHODS, with_extras
from vlprompt.extras import available


def test_demo_quick_produces_table_above_chance(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VLPROMPT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "method" in printed and "Base" in printed and "zero-shot headroom" in printed
    with open(out / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    methods = [r["method"] for r in rows]
    assert methods[0] == "zeroshot" and {"coop", "coop+nemesis", "kgcoop", "coop+dept"} <= set(methods)
    chance = 100.0 / 10  # toy-b2n: 10 base and 10 new classes
    for row in rows:
        assert float(row["base"]) > chance and float(row["new"]) > chance, row
    zs = rows[0]
    assert 40.0 <= float(zs["base"]) <= 85.0 and float(zs["new"]) >= 3 * chance  # the toy world's headroom
    assert (out / "summary.png").stat().st_size > 0
    # the few-shot sweep: zero-shot CLIP at 0 shots, the fitted linear probe at 4 shots, on all 20 classes
    with open(out / "summary_fewshot.csv") as fh:
        fewshot = {r["method"]: r for r in csv.DictReader(fh)}
    assert fewshot["zeroshot"]["shots"] == "0"
    probe = available("sklearn.linear_model")
    assert ("linear_probe" in fewshot) == probe
    assert ("linear_probe row skipped" in printed) != probe
    for row in fewshot.values():
        assert float(row["accuracy"]) > 100.0 / 20, row
        assert f" {row['accuracy']} " in printed.split("few-shot: average over datasets")[1]
    if probe:
        assert fewshot["linear_probe"]["shots"] == "4"
        assert (out / "fewshot" / "linear_probe" / "toy-b2n" / "shots4" / "seed1" / "train" / "fit.json").is_file()
    # the demo is a sweep: ordinary run directories, summarised by `vlprompt table`
    assert (out / "b2n" / "coop" / "toy-b2n" / "shots16" / "seed1" / "eval-new" / "results.json").is_file()
    capsys.readouterr()
    assert main(["table", str(out), "--protocol", "b2n"]) == 0
    table = capsys.readouterr().out
    for row in rows:
        assert f"| {row['method']:<12} | {row['base']} | {row['new']} | {row['H']} |" in table
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("results.json")}
    assert main(["demo", "--quick", "--out", str(out)]) == 0  # finished jobs are skipped: nothing is redone
    assert mtimes == {p: p.stat().st_mtime_ns for p in out.rglob("results.json")}


def test_demo_skips_a_baseline_whose_extra_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # the import fails as without scikit-learn
    kept, notes = with_extras(FEWSHOT_METHODS)
    assert kept == tuple(m for m in FEWSHOT_METHODS if m != "linear_probe")
    assert notes == ["linear_probe row skipped: linear_probe needs scikit-learn: pip install 'vlprompt[probe]'"]
