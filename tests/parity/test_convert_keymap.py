"""Reference tensor names -> vlprompt names, for every reference trainer, on synthetic state dicts built
with the names the reference code saves (sizes of the tiny test backbone: text width D = vision width
W = 64, embedding E = 32, 3 layers per tower, K = 3 classes)."""

from __future__ import annotations

import pytest
import torch

from vlprompt import create_task
from vlprompt.convert import canonical_method, clip_name, infer_method, to_vlprompt, trainers
from vlprompt.errors import VLPromptError
from vlprompt.registry import LEARNERS
from vlprompt.task import LabelSpace, parse_method

D, W, E, K, LAYERS = 64, 64, 32, 3, 3
PL = "prompt_learner."


def rand(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


def class_buffers(n_ctx: int, prefix: str = PL) -> dict:
    return {f"{prefix}token_prefix": rand(K, 1, D), f"{prefix}token_suffix": rand(K, 77 - 1 - n_ctx, D)}


def frozen_clip() -> dict:
    """A few of the frozen CLIP tensors a whole-model checkpoint holds."""
    return {
        "image_encoder.conv1.weight": rand(W, 3, 8, 8),
        "image_encoder.transformer.resblocks.0.attn.in_proj_weight": rand(3 * W, W),
        "image_encoder.proj": rand(W, E),
        "text_encoder.positional_embedding": rand(77, D),
        "text_encoder.transformer.resblocks.2.ln_1.weight": rand(D),
        "text_encoder.text_projection": rand(D, E),
        "logit_scale": torch.tensor(4.6052),
    }


def ivlp_prompts(n_t: int, n_v: int) -> dict:
    out = {f"{PL}ctx": rand(n_t, D)} if n_t else {}
    for i in range(1, LAYERS):
        if n_t:
            out[f"text_encoder.transformer.resblocks.{i}.VPT_shallow"] = rand(n_t, D)
        if n_v:
            out[f"image_encoder.transformer.resblocks.{i}.VPT_shallow"] = rand(n_v, W)
    if n_v:
        out["image_encoder.VPT"] = rand(n_v, W)
    return out


def maple_prompts() -> dict:
    out = {f"{PL}ctx": rand(2, D), f"{PL}proj.weight": rand(W, D), f"{PL}proj.bias": rand(W)}
    for i in range(LAYERS - 1):
        out[f"{PL}compound_prompts_text.{i}"] = rand(2, D)
        out[f"{PL}compound_prompt_projections.{i}.weight"] = rand(W, D)
        out[f"{PL}compound_prompt_projections.{i}.bias"] = rand(W)
    return out


def dept() -> dict:
    return {
        "film_lp_img.scale": rand(E),
        "film_lp_img.bias": rand(E),
        "film_lp_text.scale": rand(E),
        "film_lp_text.bias": rand(E),
        "linear_probe_proj.weight": rand(K, E),
        "linear_probe_proj.bias": rand(K),
    }


def restore() -> dict:
    out = {"text_cali_ratio": torch.tensor(0.13, dtype=torch.float64), "vis_cali_ratio": torch.tensor(0.2)}
    for tower in ("text", "visual"):
        out.update(
            {
                f"{tower}_adapter.post_ln.weight": rand(E),
                f"{tower}_adapter.post_ln.bias": rand(E),
                f"{tower}_adapter.FFN.0.weight": rand(4 * E, E, dtype=torch.float16),
                f"{tower}_adapter.FFN.0.bias": rand(4 * E, dtype=torch.float16),
                f"{tower}_adapter.FFN.2.weight": rand(E, 4 * E, dtype=torch.float16),
                f"{tower}_adapter.FFN.2.bias": rand(E, dtype=torch.float16),
            }
        )
    return out


def cocoop_meta(prefix: str) -> dict:
    return {
        f"{prefix}meta_net.linear1.weight": rand(E // 16, E),
        f"{prefix}meta_net.linear1.bias": rand(E // 16),
        f"{prefix}meta_net.linear2.weight": rand(D, E // 16),
        f"{prefix}meta_net.linear2.bias": rand(D),
    }


def tcp_tke(prefix: str) -> dict:
    """TCP's textual knowledge embedding: CoCoOp's names, E -> E/4 -> 4·D."""
    return {
        f"{prefix}meta_net.linear1.weight": rand(E // 4, E),
        f"{prefix}meta_net.linear1.bias": rand(E // 4),
        f"{prefix}meta_net.linear2.weight": rand(4 * D, E // 4),
        f"{prefix}meta_net.linear2.bias": rand(4 * D),
    }


def kgcoop_unused(prefix: str) -> dict:
    """Saved by KgCoOp's module (hard-coded 512 wide in the reference), never used by its forward."""
    out = {f"{prefix}bias_vectors": rand(1, 512), f"{prefix}meta_net.linear1.weight": rand(512, 512)}
    out[f"{prefix}meta_net.linear1.bias"] = rand(512)
    if prefix:  # whole model (DePT): the alias CustomCLIP.meta_net and the unused Adapter
        out.update({"meta_net.linear1.weight": out[f"{PL}meta_net.linear1.weight"], "meta_net.linear1.bias": rand(512)})
        out.update({"adapter.fc.0.weight": rand(128, 512), "adapter.fc.2.weight": rand(512, 128)})
    return out


#: method -> the state dict its reference trainer saves (module-only trainers without the prefix)
REFERENCE = {
    "coop": lambda: {"ctx": rand(16, D), **class_buffers(16, "")},
    "coop+nemesis": lambda: {"ctx": rand(K, 16, D), **class_buffers(16, "")},  # class-specific context
    "coop+dept": lambda: {f"{PL}ctx": rand(16, D), **class_buffers(16), **frozen_clip(), **dept()},
    "cocoop": lambda: {"ctx": rand(4, D), **cocoop_meta(""), **class_buffers(4, "")},
    "cocoop+dept": lambda: {f"{PL}ctx": rand(4, D), **cocoop_meta(PL), **class_buffers(4), **frozen_clip(), **dept()},
    "kgcoop": lambda: {"ctx": rand(4, D), **kgcoop_unused(""), **class_buffers(4, "")},
    "kgcoop+dept": lambda: {
        f"{PL}ctx": rand(4, D),
        **kgcoop_unused(PL),
        **class_buffers(4),
        **frozen_clip(),
        **dept(),
    },
    "ivlp": lambda: {**ivlp_prompts(2, 2), **class_buffers(2), **frozen_clip()},
    "lpt": lambda: {**ivlp_prompts(4, 0), **class_buffers(4), **frozen_clip()},
    "vpt": lambda: {**ivlp_prompts(0, 8), **frozen_clip()},
    "promptsrc": lambda: {
        **ivlp_prompts(4, 4),
        **class_buffers(4),
        **frozen_clip(),
        f"{PL}ZS_image_encoder.conv1.weight": rand(W, 3, 8, 8),
        f"{PL}ZS_image_encoder.ln_post.bias": rand(W),
    },
    "maple": lambda: {**maple_prompts(), **class_buffers(2), **frozen_clip()},
    "maple+dept": lambda: {**maple_prompts(), **class_buffers(2), **frozen_clip(), **dept()},
    "maple+restore": lambda: {**maple_prompts(), **class_buffers(2), **frozen_clip(), **restore()},
    "coop+prograd": lambda: {"ctx": rand(16, D), **class_buffers(16, "")},  # ProGrad registers prompt_learner
    "tcp": lambda: {"ctx": rand(4, D), **tcp_tke(""), **class_buffers(4, "")},
    "clip_adapter": lambda: {"fc.0.weight": rand(E // 4, E), "fc.2.weight": rand(E, E // 4)},  # the adapter module
    "tip_adapter": lambda: {"cache_keys": rand(E, 2 * K), "cache_values": torch.eye(K).repeat(2, 1).half()},
    "tip_adapter_f": lambda: {
        "cache_keys": rand(E, 2 * K),
        "cache_values": torch.eye(K).repeat(2, 1).half(),
        "fine_tuned_keys": rand(E, 2 * K),
    },
}
#: the vlprompt settings that give the same tensors on the tiny backbone
SETTINGS = {
    "coop+nemesis": ["nemesis.weight=1", "coop.csc=true"],
    "maple+restore": ["restore.formulation=code"],
}


def test_every_vlprompt_method_with_a_reference_trainer_is_covered():
    builtin = {m for m in trainers() if LEARNERS.config(parse_method(m).base).__module__.startswith("vlprompt.")}
    assert set(REFERENCE) == builtin


@pytest.mark.parametrize("method", sorted(REFERENCE))
def test_converted_names_and_shapes_are_the_tasks(tiny_vit, method):
    torch.manual_seed(0)
    converted = to_vlprompt(method, REFERENCE[method]())
    space = LabelSpace([f"class {k}" for k in range(K)])
    task = create_task(method, tiny_vit, space, overrides=SETTINGS.get(method, []))
    task.shape_fitted_buffers(converted.tensors)  # a cache takes its stored size; searched settings are not saved
    searched = {f"learner.{name}" for name in task.learner.fitted_settings}
    ours = {(k, tuple(v.shape)) for k, v in converted.tensors.items()}
    assert ours == {(k, tuple(v.shape)) for k, v in task.release_state_dict().items() if k not in searched}


@pytest.mark.parametrize("method", sorted(REFERENCE))
def test_every_reference_tensor_is_accounted_for(method):
    reference = REFERENCE[method]()
    converted = to_vlprompt(method, reference)
    frozen = ("image_encoder.", "text_encoder.", "logit_scale", f"{PL}ZS_image_encoder.")
    assert set(converted.frozen) == {k for k in reference if k.startswith(frozen) and "VPT" not in k}
    for name, tensor in converted.frozen.items():
        assert tensor is reference[name]  # frozen tensors are passed through, not copied
    buffers = [k for k in reference if k.endswith(("token_prefix", "token_suffix"))]
    # no prompt buffers: VPT (image prompts only), CLIP-Adapter and Tip-Adapter (no prompts at all)
    assert converted.dropped_class_buffers == buffers and (
        buffers or method in ("vpt", "clip_adapter", "tip_adapter", "tip_adapter_f")
    )
    # saved but unused: KgCoOp's unused modules; Tip-Adapter-F's original keys (its fine-tuned ones replace them)
    kg_unused = ("bias_vectors", "meta_net.", "adapter.")
    unused = [k for k in reference if "kgcoop" in method and any(u in k for u in kg_unused)]
    assert converted.unused == (["cache_keys"] if method == "tip_adapter_f" else unused)


def test_tensor_values_and_layer_order(tiny_vit):
    reference = REFERENCE["promptsrc"]()
    out = to_vlprompt("promptsrc", reference).tensors
    assert torch.equal(out["learner.ctx"], reference[f"{PL}ctx"])
    assert torch.equal(out["learner.vision_ctx"], reference["image_encoder.VPT"])
    for i in range(1, LAYERS):  # block i's prompts are layer i-1 of the stack
        assert torch.equal(
            out["learner.text_deep"][i - 1], reference[f"text_encoder.transformer.resblocks.{i}.VPT_shallow"]
        )
        assert torch.equal(
            out["learner.vision_deep"][i - 1], reference[f"image_encoder.transformer.resblocks.{i}.VPT_shallow"]
        )
    reference = REFERENCE["maple+dept"]()
    out = to_vlprompt("maple+dept", reference).tensors
    for i in range(LAYERS - 1):
        assert torch.equal(out["learner.text_deep"][i], reference[f"{PL}compound_prompts_text.{i}"])
        assert torch.equal(
            out[f"learner.couplings.{i}.weight"], reference[f"{PL}compound_prompt_projections.{i}.weight"]
        )
    assert torch.equal(out["learner.proj.bias"], reference[f"{PL}proj.bias"])
    assert torch.equal(out["addons.dept.film_v_scale"], reference["film_lp_img.scale"])
    assert torch.equal(out["addons.dept.film_t_bias"], reference["film_lp_text.bias"])
    assert torch.equal(out["addons.dept.head.weight"], reference["linear_probe_proj.weight"])
    reference = REFERENCE["cocoop"]()
    out = to_vlprompt("cocoop", reference).tensors
    assert torch.equal(out["learner.meta_net.linear2.weight"], reference["meta_net.linear2.weight"])


def test_converted_tensors_are_independent_copies():
    reference = {"ctx": torch.zeros(4, 8).t(), **class_buffers(4, "")}  # a non-contiguous view
    out = to_vlprompt("coop", reference).tensors["learner.ctx"]
    assert out.is_contiguous() and torch.equal(out, reference["ctx"])
    out += 1
    assert torch.equal(reference["ctx"], torch.zeros(8, 4))


def test_restore_ratios_calibrators_and_derived_initial_grams():
    reference = REFERENCE["maple+restore"]()
    converted = to_vlprompt("maple+restore", reference)
    out = converted.tensors
    assert converted.trainer == "MaPLe_FSA"
    assert out["addons.restore.text_ratio"].item() == 0.13 and out["addons.restore.text_ratio"].dtype == torch.float64
    assert torch.equal(out["addons.restore.vis_ratio"], reference["vis_cali_ratio"])
    assert torch.equal(out["addons.restore.calibrator_t.norm.weight"], reference["text_adapter.post_ln.weight"])
    assert torch.equal(out["addons.restore.calibrator_v.fc1.bias"], reference["visual_adapter.FFN.0.bias"])
    assert torch.equal(out["addons.restore.calibrator_v.fc2.weight"], reference["visual_adapter.FFN.2.weight"])
    assert out["addons.restore.calibrator_t.fc1.weight"].dtype == torch.float16  # dtypes kept as stored
    assert converted.derived == ["addons.restore.init_gram_t", "addons.restore.init_gram_v"]
    for i in range(LAYERS - 1):  # ‖PᵀP‖_F of the loaded prompts, as MaPLe_FSA's first forward after loading
        p = reference[f"{PL}compound_prompts_text.{i}"]
        v = (
            p @ reference[f"{PL}compound_prompt_projections.{i}.weight"].t()
            + reference[f"{PL}compound_prompt_projections.{i}.bias"]
        )
        assert torch.allclose(out["addons.restore.init_gram_t"][i], torch.linalg.matrix_norm(p.t() @ p), rtol=1e-5)
        assert torch.allclose(out["addons.restore.init_gram_v"][i], torch.linalg.matrix_norm(v.t() @ v), rtol=1e-5)


@pytest.mark.parametrize("method", sorted(REFERENCE))
def test_method_is_inferred_from_the_names(method):
    expected = {"coop+nemesis": "coop", "coop+prograd": "coop"}.get(method, method)  # --method tells them apart
    assert infer_method(REFERENCE[method]()) == expected


def test_method_aliases_and_unsupported_methods():
    assert canonical_method("coop+kg") == "kgcoop"
    assert canonical_method("coop+dept+kg") == "kgcoop+dept"
    assert canonical_method("ivlp+src") == "promptsrc"
    assert canonical_method("MaPLe+RESTORE") == "maple+restore"
    with pytest.raises(VLPromptError, match=r"no reference trainer saves that method; convertible: .*\bcoop\b"):
        canonical_method("maple+dept+restore")
    with pytest.raises(VLPromptError):
        canonical_method("nosuchmethod")
    with pytest.raises(VLPromptError, match="cannot tell the method.*pass --method"):
        infer_method({"weights": torch.zeros(1)})


def test_unknown_and_missing_tensors_raise_one_line_naming_them():
    with pytest.raises(VLPromptError) as err:
        to_vlprompt("lpt", REFERENCE["ivlp"]())  # vision prompts are not LPT's
    message = str(err.value)
    assert "\n" not in message and message.startswith("lpt: ")
    assert "image_encoder.VPT" in message and "pass --method ivlp" in message
    reference = REFERENCE["maple"]()
    del reference[f"{PL}proj.bias"]
    with pytest.raises(
        VLPromptError, match=r"maple: missing prompt_learner\.proj\.bias \(saved by the reference MaPLe\)"
    ):
        to_vlprompt("maple", reference)
    reference = REFERENCE["ivlp"]()
    del reference["text_encoder.transformer.resblocks.1.VPT_shallow"]
    with pytest.raises(VLPromptError, match=r"ivlp: missing text_encoder\.transformer\.resblocks\.1\.VPT_shallow"):
        to_vlprompt("ivlp", reference)
    with pytest.raises(VLPromptError, match=r"coop: missing prompt_learner\.ctx"):
        to_vlprompt("coop", class_buffers(4, ""))
    with pytest.raises(VLPromptError, match=r"coop\+dept: missing film_lp_img\.scale"):
        to_vlprompt("coop+dept", {"ctx": rand(4, D)})
    many = {f"extra.{i}": rand(1) for i in range(9)}
    with pytest.raises(VLPromptError, match=r"9 tensor\(s\) the reference CoOp does not save \(extra.0, .*, \.\.\.\)"):
        to_vlprompt("coop", {"ctx": rand(4, D), **many})


def test_clip_names_of_frozen_tensors():
    assert (
        clip_name("image_encoder.transformer.resblocks.0.ln_1.weight") == "visual.transformer.resblocks.0.ln_1.weight"
    )
    assert clip_name("text_encoder.ln_final.bias") == "ln_final.bias"
    assert clip_name("prompt_learner.ZS_image_encoder.proj") == "visual.proj"
    assert clip_name("logit_scale") == "logit_scale"
