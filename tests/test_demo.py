"""End to end: `vlprompt demo --quick` on the offline toy world (the CI smoke run of the main job)."""

import csv

from vlprompt.cli import main


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
