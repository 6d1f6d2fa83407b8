"""Protocols are objects in one registry: their declared attributes (not their names) drive presets, sweep
planning and the tables, and a new protocol is one registered object (tests/example_protocol.py)."""

from __future__ import annotations

import pytest

from vlprompt.cli import main
from vlprompt.errors import VLPromptError
from vlprompt.protocols import PROTOCOLS, get_protocol, register_protocol, resolve_names, target_protocol


@pytest.fixture
def toy_transfer():
    from example_protocol import TOY_TRANSFER

    register_protocol(TOY_TRANSFER)
    yield TOY_TRANSFER
    del PROTOCOLS[TOY_TRANSFER.name]


def test_declared_attributes_of_the_built_in_protocols():
    assert [p.preset for p in PROTOCOLS.values()] == ["fewshot", "b2n", "xd", "xd"]  # dg runs are the xd runs
    assert [p.name for p in PROTOCOLS.values() if p.zeroshot_at_zero_shots] == ["fewshot"]
    assert target_protocol("xd", "imagenet_sketch") == "dg" and target_protocol("xd", "toy-shift") == "dg"
    assert target_protocol("xd", "dtd") == "xd" and target_protocol("xd", "my_dataset") == "xd"
    with pytest.raises(VLPromptError, match="--targets: base-to-new evaluates each run on its own new classes"):
        resolve_names(get_protocol("b2n"), ["dtd"], "targets")
    assert resolve_names(get_protocol("b2n"), ["new"], "targets") == ("new",)
    with pytest.raises(VLPromptError, match="--targets: the few-shot protocol has no evaluation targets"):
        resolve_names(get_protocol("fewshot"), ["dtd"], "targets")


def test_registering_twice_is_refused(toy_transfer):
    with pytest.raises(ValueError, match="'toy-transfer' is registered twice"):
        register_protocol(toy_transfer)


def test_a_registered_protocol_is_planned_and_uses_its_preset(toy_transfer, tmp_path, capsys):
    from vlprompt.sweep import build_spec, plan

    jobs = plan(build_spec(tmp_path, protocol="toy-transfer", methods=["coop", "zeroshot"], seeds=[1]))
    assert [j.key.relpath for j in jobs] == [
        f"toy-transfer/{m}/toy-b2n/shots{s}/seed1/{kind}"
        for m, s in (("coop", 2), ("zeroshot", 2))
        for kind in ("train", "eval-toy-xd", "eval-toy-shift")
    ]
    train = jobs[0].argv
    assert train[train.index("--protocol") + 1] == "xd" and train[train.index("--shots") + 1] == "2"
    cmd = ["sweep", "--protocol", "toy-transfer", "--methods", "coop", "--seeds", "1", "--root", str(tmp_path)]
    assert main([*cmd, "--dry-run"]) == 0  # the command line's choices are the registry
    assert "blocked  toy-transfer/coop/toy-b2n/shots2/seed1/eval-toy-shift" in capsys.readouterr().out
    assert main(["presets", "coop", "--protocol", "toy-transfer"]) == 0
    same = capsys.readouterr().out
    assert main(["presets", "coop", "--protocol", "xd"]) == 0
    assert same.replace("toy-transfer", "xd") == capsys.readouterr().out.replace("toy-transfer", "xd")
