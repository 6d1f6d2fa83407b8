"""Published settings resolved by composition and dataset, each value with its source."""

import pytest

from vlprompt.cli import main
from vlprompt.config import RunConfig, make_config
from vlprompt.protocols import PROTOCOLS

FEWSHOT_EPOCHS = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}


def resolved(method, dataset="dtd", **kw):
    cfg = make_config(method, dataset, **kw)
    return {name: cfg.section(name) for name in ("train", *cfg.components)}, cfg


@pytest.mark.parametrize("protocol", [None, *PROTOCOLS])
@pytest.mark.parametrize("alias, spelled", [("kgcoop", "coop+kg"), ("promptsrc", "ivlp+src")])
def test_aliases_resolve_exactly_like_their_components(alias, spelled, protocol):
    for dataset in ("dtd", "imagenet", "oxford_pets"):
        a, cfg_a = resolved(alias, dataset, protocol=protocol, shots=16)
        b, cfg_b = resolved(spelled, dataset, protocol=protocol, shots=16)
        assert a == b and cfg_a.sources == cfg_b.sources


def test_kgcoop_and_promptsrc_get_their_own_settings_not_the_first_word():
    kg, _ = resolved("coop+kg", protocol="b2n")
    assert (kg["train"].epochs, kg["train"].batch_size, kg["train"].lr) == (100, 128, 0.002)
    assert kg["coop"].ctx_init == "a photo of a" and kg["coop"].n_ctx == 4 and kg["kg"].weight == 8.0
    src, _ = resolved("ivlp+src", protocol="b2n")
    assert (src["train"].epochs, src["train"].lr) == (20, 0.0025)
    assert (src["ivlp"].n_ctx_text, src["ivlp"].n_ctx_vision, src["ivlp"].depth_text) == (4, 4, 9)
    assert (src["gpa"].mean, src["gpa"].std) == (15.0, 1.0)
    xd, _ = resolved("promptsrc", protocol="dg")
    assert (xd["ivlp"].depth_text, xd["gpa"].mean, xd["gpa"].std) == (3, 6.0, 10.0)


@pytest.mark.parametrize("method", ["coop", "coop+nemesis"])
@pytest.mark.parametrize("shots", [1, 2, 4, 8, 16])
def test_imagenet_uses_50_epochs_for_coop_and_nemesis_at_every_shot_count(method, shots):
    other, _ = resolved(method, "dtd", protocol="fewshot", shots=shots)
    assert other["train"].epochs == FEWSHOT_EPOCHS[shots]
    imagenet, cfg = resolved(method, "imagenet", protocol="fewshot", shots=shots)
    assert imagenet["train"].epochs == 50 and "dataset rule" in cfg.sources["train.epochs"]


def test_coop_cross_dataset_source_model():
    train, cfg = resolved("coop", "imagenet", protocol="xd", shots=16)
    assert (train["train"].epochs, train["coop"].ctx_init, train["coop"].n_ctx) == (50, "a photo of a", 4)
    assert "vit_b16_ep50_ctxv1" in cfg.sources["coop.ctx_init"]


@pytest.mark.parametrize("dataset, expected", [("food101", True), ("oxford_pets", True), ("dtd", False)])
def test_nemesis_constant_omega_and_pan_weight_on_food_and_pets(dataset, expected):
    c, cfg = resolved("coop+nemesis", dataset, shots=16)
    if expected:
        assert c["nemesis"].omega_schedule == "constant" and c["nemesis"].pan_weight == 50.0
        assert "Food101 and OxfordPets" in cfg.sources["nemesis.pan_weight"]
    else:
        assert c["nemesis"].omega_schedule == "logistic" and c["nemesis"].pan_weight is None


@pytest.mark.parametrize(
    "dataset, gpa",
    [("stanford_cars", (45.0, 5.0)), ("oxford_flowers", (45.0, 5.0)), ("fgvc_aircraft", (45.0, 5.0)),
     ("dtd", (45.0, 5.0)), ("eurosat", (45.0, 5.0)), ("caltech101", (30.0, 30.0)), ("imagenet", (30.0, 30.0)),
     ("ucf101", (30.0, 30.0))],
)  # fmt: skip
def test_promptsrc_fewshot_gpa_per_dataset(dataset, gpa):
    c, _ = resolved("promptsrc", dataset, protocol="fewshot", shots=16)
    assert (c["gpa"].mean, c["gpa"].std) == gpa and c["train"].epochs == 50
    b2n, _ = resolved("promptsrc", dataset, protocol="b2n")
    assert (b2n["gpa"].mean, b2n["gpa"].std) == (15.0, 1.0)  # the rule is for the few-shot protocol only


@pytest.mark.parametrize(
    "dataset, vis, text, fs",
    [("oxford_pets", 0.01, 0.1, 1.0), ("eurosat", 0.01, 0.1, 1.0), ("sun397", 0.05, 0.05, 1.0),
     ("ucf101", 0.05, 0.05, 1.0), ("imagenet", 0.05, 0.05, 1.0), ("dtd", 0.15, 0.1, 0.5),
     ("fgvc_aircraft", 0.1, 0.1, 1.0), ("food101", 0.1, 0.1, 1.0)],
)  # fmt: skip
def test_restore_calibration_ratios_per_dataset(dataset, vis, text, fs):
    c, cfg = resolved("maple+restore", dataset, protocol="b2n")
    r = c["restore"]
    assert (r.vis_calib_r, r.text_calib_r, r.fs_weight) == (vis, text, fs)
    assert "run_maple_fsa.sh" in cfg.sources["restore.vis_calib_r"]
    assert c["train"].epochs == 10 and c["train"].lr == 0.0035


def test_restore_p_keeps_promptsrc_settings_and_skips_the_maple_fsa_ones():
    maple, cfg = resolved("maple+restore", "dtd", protocol="b2n")
    assert maple["restore"].formulation == "code" and "preset restore:b2n" in cfg.sources["restore.formulation"]
    for method in ("promptsrc+restore", "ivlp+restore+src"):
        c, cfg = resolved(method, "dtd", protocol="b2n")
        assert (c["train"].epochs, c["train"].lr, c["ivlp"].n_ctx_text, c["gpa"].mean) == (20, 0.0025, 4, 15.0)
        assert c["restore"].fs_weight == 1.0 and c["restore"].formulation == "code"  # no MaPLe_FSA DTD rule
        assert not any(source.startswith(("preset restore", "dataset rule restore")) for source in cfg.sources.values())


def test_missing_presets_exist():
    ivlp, _ = resolved("ivlp", preset="promptsrc")
    assert (ivlp["ivlp"].n_ctx_text, ivlp["ivlp"].depth_text, ivlp["train"].lr, ivlp["train"].epochs) == (
        4,
        9,
        0.0025,
        20,
    )
    xd, _ = resolved("maple+restore", protocol="xd")
    assert (xd["maple"].depth, xd["train"].lr, xd["train"].epochs) == (9, 0.0035, 2)


def test_dept_fixes_every_base_and_falls_back_to_the_protocol_preset():
    for base, (lr, bs) in {
        "coop": (0.0035, 4),
        "cocoop": (0.002, 1),
        "kgcoop": (0.0035, 4),
        "maple": (0.0035, 4),
    }.items():
        c, cfg = resolved(f"{base}+dept", protocol="b2n")
        assert (c["train"].lr, c["train"].batch_size, c["train"].epochs) == (lr, bs, 10), base
        assert cfg.preset == "dept"
    kg, _ = resolved("kgcoop+dept")
    assert kg["kg"].weight == 2.0 and kg["coop"].ctx_init == "a photo of a"
    src, _ = resolved("promptsrc+dept")  # no DePT setting for PromptSRC: its own base-to-new preset
    assert (src["train"].epochs, src["ivlp"].n_ctx_text) == (20, 4)


def test_flags_and_overrides_win_and_are_recorded():
    c, cfg = resolved("coop", epochs=3, overrides=["coop.n_ctx=8"])
    assert c["train"].epochs == 3 and c["coop"].n_ctx == 8
    assert cfg.sources["train.epochs"] == "flag" and cfg.sources["coop.n_ctx"] == "--set"
    assert cfg.sources["train.lr"].startswith("preset coop:fewshot")


def test_config_yaml_round_trip(tmp_path):
    cfg = make_config("maple+dept+restore", "dtd", protocol="b2n", shots=16, out=str(tmp_path / "r"))
    cfg.dump(tmp_path / "config.yaml")
    assert RunConfig.load(tmp_path / "config.yaml") == cfg


def test_presets_command_shows_sources(capsys):
    assert main(["presets", "coop", "--dataset", "imagenet", "--shots", "16"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.strip().startswith("train.epochs"))
    assert "50" in line and "dataset rule coop:imagenet" in line
    assert main(["presets", "coop+nemesis"]) == 0
    out = capsys.readouterr().out
    assert "nemesis.weight" in out and "preset nemesis:fewshot" in out
