"""DePT's ``dept`` and RESTORE's ``restore`` add-ons, and ``vlprompt analyze feature-shift``."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from vlprompt.addons.dept.config import DePTConfig
from vlprompt.addons.dept.model import dept_fused_logits, film, head_inputs
from vlprompt.addons.restore.code_formulation import calibrate, fs_loss_code, shift_ratio, updated_ratios
from vlprompt.addons.restore.config import RestoreConfig
from vlprompt.addons.restore.paper_formulation import block_shift, fs_loss_paper, shift_norm, surgery_alpha
from vlprompt.errors import VLPromptError
from vlprompt.methods.coop.config import CoOpConfig
from vlprompt.task import LabelSpace, PromptTask, StepInfo

SPACE = LabelSpace(["red circle", "green square", "blue star"])


def coop_dept(backbone, space=SPACE, **dept_cfg):
    configs = {"coop": CoOpConfig(n_ctx=4), "dept": DePTConfig(**dept_cfg)}
    return PromptTask(backbone, "coop+dept", configs, space)


# ---------------------------------------------------------------------------------------------- DePT: pure
def test_film_and_fused_logits_match_hand_computed_values():
    x = torch.tensor([[1.0, -2.0]])
    gamma, beta = torch.tensor([2.0, 0.5]), torch.tensor([0.1, 1.0])
    assert torch.allclose(film(x, gamma, beta), torch.tensor([[2.1, 0.0]]))
    z_sim = torch.tensor([[10.0, -4.0, 0.0]])
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = torch.tensor([0.0, 1.0, -1.0])
    # FiLM_v(f) = [2.1, 0.0]; W·FiLM + b = [2.1, 1.0, 1.1]; λ = 0.7
    fused = dept_fused_logits(z_sim, x, (gamma, beta), w, b, 0.7)
    expected = 0.3 * z_sim + 0.7 * torch.tensor([[2.1, 1.0, 1.1]])
    assert torch.allclose(fused, expected)


def test_head_inputs_stack_ground_truth_text_over_image_features():
    ident = (torch.ones(2), torch.zeros(2))
    image = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    text = torch.tensor([[10.0, 0.0], [0.0, 20.0], [5.0, 5.0]])
    labels = torch.tensor([2, 0])
    x, y = head_inputs(image, text, labels, ident, ident)
    assert torch.equal(x, torch.tensor([[5.0, 5.0], [10.0, 0.0], [1.0, 2.0], [3.0, 4.0]]))
    assert torch.equal(y, torch.tensor([2, 0, 2, 0]))
    per_image = torch.stack([text, -text])  # [B, K, E]: sample i uses text[i, y_i]
    x, _ = head_inputs(image, per_image, labels, ident, ident)
    assert torch.equal(x[:2], torch.tensor([[5.0, 5.0], [-10.0, 0.0]]))


# ---------------------------------------------------------------------------------------------- DePT: add-on
def test_dept_loss_composition_and_lr_groups(tiny_vit):
    task = coop_dept(tiny_vit, weight=0.6, lr_mult=5.0)
    dept = task.addons["dept"]
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    with torch.no_grad():
        out = task(images=images)
        terms = task.loss_terms(out, labels, StepInfo())
    assert set(terms) == {"ce", "dept"}
    assert float(terms["ce"]) == pytest.approx(0.4 * float(F.cross_entropy(out.logits, labels)), rel=1e-5)
    # at init FiLM is the identity, so the head sees the raw features
    x = torch.cat([out.text[labels], out.image])
    z_lin = (x @ dept.head.weight.t() + dept.head.bias).detach()
    assert float(terms["dept"]) == pytest.approx(0.6 * float(F.cross_entropy(z_lin, labels.repeat(2))), rel=1e-5)
    groups = {g["lr_scale"]: g for g in task.param_groups(0.01)}
    assert set(groups) == {1.0, 5.0} and groups[5.0]["lr"] == pytest.approx(0.05)
    assert {id(p) for p in groups[5.0]["params"]} == {id(p) for p in dept.parameters()}
    assert dept.head.weight.shape == (3, tiny_vit.embed_dim)


def test_dept_film_stays_fp32_under_pure_half(tiny_vit_files):
    from vlprompt.backbones import load_backbone
    from vlprompt.engine.precision import apply_fp16

    backbone = load_backbone(str(tiny_vit_files[0]), str(tiny_vit_files[1]), device="cpu")
    task = coop_dept(backbone)
    apply_fp16(backbone, task)
    dtypes = {n: p.dtype for n, p in task.addons["dept"].named_parameters()}
    assert dtypes == {
        "film_v_scale": torch.float32,
        "film_v_bias": torch.float32,
        "film_t_scale": torch.float32,
        "film_t_bias": torch.float32,
        "head.weight": torch.float16,
        "head.bias": torch.float16,
    }


def test_dept_eval_fuses_on_seen_rows_and_is_similarity_only_on_unseen(tiny_vit):
    torch.manual_seed(0)
    task = coop_dept(tiny_vit).eval()
    dept = task.addons["dept"]
    with torch.no_grad():
        dept.film_v_scale.mul_(1.5)
        dept.film_v_bias.add_(0.2)
    images = torch.randn(3, 3, 32, 32)
    out = task(images=images)
    film_v = (dept.film_v_scale, dept.film_v_bias)
    fused = dept_fused_logits(out.logits, out.image, film_v, dept.head.weight, dept.head.bias, 0.7)
    assert torch.allclose(task.predict(images=images), fused, atol=1e-5)
    # a seen subset (ImageNet-A/-R style): rows 2 and 0 of the head
    subset = LabelSpace(["blue star", "red circle"], seen=True, rows=[2, 0])
    task.set_label_space(subset)
    out = task(images=images)
    rows = torch.tensor([2, 0])
    expected = dept_fused_logits(out.logits, out.image, film_v, dept.head.weight[rows], dept.head.bias[rows], 0.7)
    assert torch.allclose(task.predict(images=images), expected, atol=1e-5)
    # unseen classes: the similarity head alone
    task.set_label_space(LabelSpace(["cat", "dog"], seen=False))
    assert torch.allclose(task.predict(images=images), task(images=images).logits)
    # fusion off: the linear head alone on seen classes
    task.set_label_space(SPACE)
    dept.config.test_time_fusion = False
    out = task(images=images)
    lin = (out.image * film_v[0] + film_v[1]) @ dept.head.weight.t() + dept.head.bias
    assert torch.allclose(task.predict(images=images), lin, atol=1e-5)
    with pytest.raises(VLPromptError, match="head was trained on 3"):
        task.set_label_space(LabelSpace(["a", "b"], seen=True))


def test_coop_dept_trains_two_steps_and_evaluates(tiny_vit):
    torch.manual_seed(0)
    task = coop_dept(tiny_vit)
    before = {k: v.detach().clone() for k, v in task.trainable_parameters().items()}
    optimizer = torch.optim.SGD(task.param_groups(0.01), lr=0.01, momentum=0.9)
    for step in range(2):
        out = task(images=torch.randn(2, 3, 32, 32))
        loss = sum(task.loss_terms(out, torch.tensor([0, 1]), StepInfo(step=step)).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    changed = {k for k, p in task.trainable_parameters().items() if not torch.equal(before[k], p)}
    assert {"learner.ctx", "addons.dept.head.weight", "addons.dept.film_v_scale", "addons.dept.film_t_scale"} <= changed
    images = torch.randn(2, 3, 32, 32)
    task.eval()
    seen = task.predict(images=images)
    task.set_label_space(LabelSpace(["cat", "dog"], seen=False))
    unseen = task.predict(images=images)
    assert seen.shape == (2, 3) and unseen.shape == (2, 2)
    assert torch.allclose(unseen, task(images=images).logits)


# ---------------------------------------------------------------------------------------------- RESTORE: pure
def test_fs_losses_alpha_and_ratios_match_hand_computed_values():
    norms_v = {0: torch.tensor(3.0), 1: torch.tensor(1.0), 2: torch.tensor(5.0)}
    norms_t = {1: torch.tensor(4.0), 2: torch.tensor(2.0)}
    assert float(fs_loss_paper(norms_v, norms_t)) == pytest.approx(9.0 + 9.0)  # layer 0: vision only
    assert float(surgery_alpha(norms_v, 0.1)) == pytest.approx(0.9)
    assert float(surgery_alpha(norms_t, 0.5)) == pytest.approx(3.0)
    p = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # ‖PᵀP‖_F = 4; ‖P₀ᵀP₀‖_F = √2 for P₀ = I
    assert float(shift_ratio(p, torch.tensor(math.sqrt(2)))) == pytest.approx(4 / math.sqrt(2))
    q = torch.tensor([[1.0, 2.0, 2.0]])  # PᵀP = vvᵀ with ‖v‖² = 9: ‖PᵀP‖_F = 9
    assert float(shift_ratio(q, torch.tensor(3.0))) == pytest.approx(3.0)
    assert float(fs_loss_code(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 4.0]))) == pytest.approx(0.25 + 4.0)
    assert updated_ratios(0.1, 0.05, [1.0, 3.0], [10.0, 30.0]) == pytest.approx((0.1 + 0.02 * 2, 0.05 + 0.005 * 20))
    fc = lambda x: 2 * x
    x = torch.tensor([1.0])
    assert float(calibrate(x, fc, 0.25)) == pytest.approx(0.25 * 2 + 0.75)
    assert float(calibrate(x, fc, 0.25, mode="fixed")) == pytest.approx(0.2 * 2 + 0.9)


def _quick_gelu(z: float) -> float:
    return z / (1 + math.exp(-1.702 * z))


def test_feature_calibrators_of_both_variants_match_hand_computed_values():
    from vlprompt.addons.restore.code_formulation import FeatureCalibrator

    x = torch.tensor([[1.0, -1.0]])
    a = 1 / math.sqrt(1 + 1e-5)  # LN(x) = (a, −a): mean 0, variance 1, unit weight, zero bias
    g = _quick_gelu(a)  # QuickGELU(W₁ LN(x) + b₁) with W₁'s only non-zero entry W₁[0, 0] = 1
    for out_act in (False, True):
        fc = FeatureCalibrator(2, out_act=out_act)
        with torch.no_grad():
            for p in (fc.fc1.weight, fc.fc1.bias, fc.fc2.weight):
                p.zero_()
            fc.fc1.weight[0, 0] = 1.0
            fc.fc2.weight[0, 0], fc.fc2.weight[1, 0] = 2.0, -1.0
            fc.fc2.bias.copy_(torch.tensor([0.0, 0.5]))
        h = (2 * g, 0.5 - g)  # W₂ · QuickGELU(...) + b₂
        if out_act:  # RESTORE_p: a second QuickGELU before the residual
            h = tuple(_quick_gelu(v) for v in h)
        expected = torch.tensor([[1.0 + h[0], -1.0 + h[1]]])
        assert torch.allclose(fc(x), expected, atol=1e-6), out_act


class _FakeBackbone:
    """strip_prompts / run_block with a caller-given block function (vision layout: prompts last)."""

    def strip_prompts(self, tower, x, n):
        return x[:, : x.shape[1] - n]

    def run_block(self, tower, block, x):
        return block(x)


def test_block_shift_is_zero_for_token_wise_blocks_and_exact_for_mixing_blocks():
    bb, x = _FakeBackbone(), torch.arange(12.0).view(1, 4, 3)  # 3 tokens + 1 prompt
    tokenwise = lambda t: 2 * t + 1
    assert torch.equal(block_shift(bb, "vision", tokenwise, x, tokenwise(x), 1), torch.zeros(1, 3, 3))
    mixing = lambda t: t + t.mean(dim=1, keepdim=True)
    omega = block_shift(bb, "vision", mixing, x, mixing(x), 1)
    # mean over 4 tokens minus mean over the 3 non-prompt tokens, for every token
    delta = x.mean(dim=1) - x[:, :3].mean(dim=1)
    assert torch.allclose(omega, delta.unsqueeze(1).expand(1, 3, 3))
    frob = float(delta.norm()) * math.sqrt(3)
    assert float(shift_norm(omega, per_token=False)) == pytest.approx(frob)
    assert float(shift_norm(omega)) == pytest.approx(frob / math.sqrt(3))


# ---------------------------------------------------------------------------------------------- RESTORE: add-on
def _deep_task(backbone, base, method, **restore_cfg):
    from vlprompt import create_task

    return create_task(method, backbone, SPACE, overrides=[f"restore.{k}={v}" for k, v in restore_cfg.items()])


def _two_steps(task, backbone):
    frozen = {k: v.clone() for k, v in backbone.clip.state_dict().items()}
    optimizer = torch.optim.SGD(task.param_groups(0.01), lr=0.01, momentum=0.9)
    torch.manual_seed(1)
    for step in range(2):
        out = task(images=torch.randn(2, 3, 32, 32))
        terms = task.loss_terms(out, torch.tensor([0, 1]), StepInfo(step=step))
        optimizer.zero_grad()
        sum(terms.values()).backward()
        optimizer.step()
    assert all(torch.equal(frozen[k], v) for k, v in backbone.clip.state_dict().items())
    return {k: v.detach() for k, v in terms.items()}


def test_maple_restore_paper_trains_and_uses_the_current_shift(tiny_vit):
    task = _deep_task(tiny_vit, "maple", "maple+restore", formulation="paper")
    restore = task.addons["restore"]
    assert task.feature_cache_blocker and not task.image_features_cacheable
    terms = _two_steps(task, tiny_vit)
    assert set(terms) == {"ce", "restore_fs"} and float(terms["restore_fs"]) > 0
    norms_v, norms_t = restore.shifts
    assert set(norms_v) == set(range(3)) and set(norms_t) == set(range(3))  # prompts reach every block
    assert restore.surgery_v.down.weight.abs().sum() > 0  # the surgery learns from its zero init
    task.eval()
    with torch.no_grad():
        task.predict(images=torch.randn(2, 3, 32, 32))
    assert set(restore.shifts[0]) == set(range(3))  # Ω recomputed in the evaluation forward


def test_ivlp_restore_code_trains_and_updates_ratios_once(tiny_vit):
    task = _deep_task(tiny_vit, "ivlp", "ivlp+restore", formulation="code", text_calib_r=0.1, vis_calib_r=0.05)
    restore = task.addons["restore"]
    assert restore.feature_cache_blocker(restore.config) is None and not restore.taps
    pairs = task.learner.deep_prompt_pairs()
    assert len(pairs) == 2  # depth clamped to the tiny model's 3 layers: blocks 1..2
    s_t, s_v = restore.shift_ratios()
    assert torch.allclose(s_t, torch.ones(2)) and torch.allclose(s_v, torch.ones(2))  # at init
    terms = _two_steps(task, tiny_vit)
    assert set(terms) == {"ce", "restore_fs"}
    state = task.state_dict()
    assert {
        "addons.restore.init_gram_t",
        "addons.restore.init_gram_v",
        "addons.restore.text_ratio",
        "addons.restore.vis_ratio",
    } <= set(state)
    with torch.no_grad():
        pairs = task.learner.deep_prompt_pairs()
        grams_t = [float((p @ p.t()).norm()) for p, _ in pairs]
        grams_v = [float((v @ v.t()).norm()) for _, v in pairs]
    for epoch in (0, 1, 2):  # E = 10: only the epoch with 0-based index ⌊10/3⌋ = 3 updates
        task.on_epoch_end(epoch, 10)
    assert float(restore.text_ratio) == pytest.approx(0.1) and float(restore.vis_ratio) == pytest.approx(0.05)
    task.on_epoch_end(3, 10)
    assert float(restore.text_ratio) == pytest.approx(0.1 + 0.02 * sum(grams_t) / 2, rel=1e-5)
    assert float(restore.vis_ratio) == pytest.approx(0.05 + 0.005 * sum(grams_v) / 2, rel=1e-5)
    updated = float(restore.text_ratio)
    task.on_epoch_end(4, 10)
    assert float(restore.text_ratio) == updated


def test_restore_code_is_the_default_and_its_variant_follows_the_composition(tiny_vit):
    assert RestoreConfig().formulation == "code"
    variants = {m: _deep_task(tiny_vit, "", m).addons["restore"].variant for m in ("maple+restore", "ivlp+restore")}
    assert variants == {"maple+restore": "maple", "ivlp+restore": "maple"}
    task = _deep_task(tiny_vit, "ivlp", "promptsrc+restore")
    restore = task.addons["restore"]
    assert task.composition.addons == ("src", "gpa", "restore") and restore.variant == "promptsrc"
    assert "addons.restore.text_ratio" not in task.state_dict()  # fixed mix: no ratio buffers, no update
    task.on_epoch_end(0, 3)
    assert restore.epoch_metrics() == {}
    forced = _deep_task(tiny_vit, "ivlp", "promptsrc+restore", variant="maple").addons["restore"]
    assert forced.variant == "maple" and isinstance(forced.calibrator_t.act_out, torch.nn.Identity)
    with pytest.raises(VLPromptError, match="unknown restore.variant 'x'"):
        _deep_task(tiny_vit, "ivlp", "ivlp+restore", variant="x")


def test_restore_p_calibrates_before_the_self_regulating_losses_and_not_the_teachers(tiny_vit):
    from vlprompt.addons.src.model import src_losses
    from vlprompt.data.templates import PROMPTSRC_TEMPLATES
    from vlprompt.methods.prompts import hand_crafted_features

    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([0, 2])
    terms = {}
    for method in ("promptsrc+restore", "ivlp+restore+src"):  # the order of src and restore does not matter
        torch.manual_seed(0)
        task = _deep_task(tiny_vit, "ivlp", method)
        restore, src = task.addons["restore"], task.addons["src"]
        with torch.no_grad():
            for fc in (restore.calibrator_t, restore.calibrator_v):  # a calibrator far from the identity
                fc.fc2.bias.fill_(1.0)
            out = task(images=images)
            # t′ = 0.2 · FC_t(t) + 0.9 · t, f′ = 0.2 · FC_v(f) + 0.9 · f on the prompted features
            assert torch.allclose(out.text, 0.2 * restore.calibrator_t(out.text_raw) + 0.9 * out.text_raw, atol=1e-6)
            assert torch.allclose(out.image, 0.2 * restore.calibrator_v(out.image_raw) + 0.9 * out.image_raw, atol=1e-6)
            terms[method] = task.loss_terms(out, labels, StepInfo(num_epochs=2))
            # the teachers: the prompt-free image tower and the template-averaged frozen text, no calibrator
            teacher = tiny_vit.encode_image(images)
            targets = hand_crafted_features(tiny_vit, SPACE.classnames, PROMPTSRC_TEMPLATES, normalize_each=False)
            assert torch.allclose(src.text_targets, targets, atol=1e-6)
            weights = (25.0, 10.0, 1.0)
            calibrated = src_losses(out.image, teacher, out.text, targets, tiny_vit.logit_scale, weights)
            raw = src_losses(out.image_raw, teacher, out.text_raw, targets, tiny_vit.logit_scale, weights)
        for name in ("src_text", "src_image", "src_kl"):
            assert float(terms[method][name]) == pytest.approx(float(calibrated[name]), rel=1e-5), name
            assert float(terms[method][name]) != pytest.approx(float(raw[name]), rel=1e-3), name
        assert set(terms[method]) == {"ce", "src_text", "src_image", "src_kl", "restore_fs"}
    a, b = terms.values()
    assert all(float(a[k]) == pytest.approx(float(b[k]), rel=1e-6) for k in a)


def test_restore_rejects_text_only_learners(tiny_vit):
    configs = {"coop": CoOpConfig(n_ctx=4), "restore": RestoreConfig()}
    with pytest.raises(VLPromptError, match="needs deep_text, deep_vision"):
        PromptTask(tiny_vit, "coop+restore", configs, SPACE)


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_coop_dept_round_trip_and_feature_shift(tmp_path, cli_env, tiny_folder, capsys):
    from vlprompt.cli import main

    data = ["--dataset", "folder", "--data-root", str(tiny_folder)]
    assert (
        main(
            [
                "train",
                "--method",
                "coop+dept",
                *data,
                "--subsample",
                "base",
                "--out",
                str(tmp_path / "base"),
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--set",
                "coop.n_ctx=4",
                *cli_env,
            ]
        )
        == 0
    )
    trained = json.loads((tmp_path / "base" / "results.json").read_text())
    assert trained["label_space"] == "seen" and trained["num_classes"] == 2
    config = (tmp_path / "base" / "config.yaml").read_text()
    assert "lr_mult: 6.5" in config and "weight: 0.7" in config
    assert (
        main(["eval", "--run", str(tmp_path / "base"), *data, "--subsample", "new", "--out", str(tmp_path / "new")])
        == 0
    )
    assert json.loads((tmp_path / "new" / "results.json").read_text())["label_space"] == "unseen"
    capsys.readouterr()
    out = tmp_path / "shift.json"
    assert (
        main(
            [
                "analyze",
                "feature-shift",
                "--run",
                str(tmp_path / "base"),
                *data,
                "--subsample",
                "base",
                "--out",
                str(out),
                "--max-images",
                "3",
            ]
        )
        == 0
    )
    assert "layer" in capsys.readouterr().out
    shift = json.loads(out.read_text())
    assert shift["num_images"] == 3 and shift["label_space"] == "seen"
    assert shift["vision"] == [0.0, 0.0, 0.0]  # CoOp's image tower carries no prompts
    assert all(v > 0 for v in shift["text"])  # the context tokens shift the class-name tokens at every block


def test_analyze_needs_a_trained_run(tmp_path, cli_env, tiny_folder, capsys):
    from vlprompt.cli import main

    assert (
        main(
            [
                "analyze",
                "feature-shift",
                "--run",
                str(tmp_path / "nope"),
                "--dataset",
                "folder",
                "--data-root",
                str(tiny_folder),
            ]
        )
        == 2
    )
    assert "vlprompt train" in capsys.readouterr().err


def test_feature_shift_of_a_restore_run_matches_the_addon(tiny_vit):
    from vlprompt.analysis.feature_shift import measure_shifts

    task = _deep_task(tiny_vit, "maple", "maple+restore", formulation="paper").eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        task(images=images)
    shifts = measure_shifts(task.learner, [images])
    norms_v, norms_t = task.addons["restore"].shifts
    assert shifts["vision"] == pytest.approx([float(norms_v[i]) for i in range(3)], rel=1e-4)
    assert shifts["text"] == pytest.approx([float(norms_t[i]) for i in range(3)], rel=1e-4)


def test_cli_ivlp_restore_code_ratios_survive_save_and_load(tmp_path, cli_env, tiny_folder):
    from safetensors.torch import load_file

    from vlprompt.cli import main

    data = ["--dataset", "folder", "--data-root", str(tiny_folder)]
    assert (
        main(
            [
                "train",
                "--method",
                "ivlp+restore",
                *data,
                "--subsample",
                "base",
                "--out",
                str(tmp_path / "run"),
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--set",
                "restore.formulation=code",
                *cli_env,
            ]
        )
        == 0
    )
    weights = load_file(str(tmp_path / "run" / "weights.safetensors"))
    assert float(weights["addons.restore.text_ratio"]) > 0.1  # updated after epoch index ⌊2/3⌋ = 0
    assert weights["addons.restore.init_gram_t"].shape == (2,)
    assert (
        main(["eval", "--run", str(tmp_path / "run"), *data, "--subsample", "new", "--out", str(tmp_path / "new")]) == 0
    )
