"""Hugging Face ``transformers`` ``CLIPModel`` folders read into open_clip's architecture (issue 20, item 3)."""

import json

import pytest
import torch

from vlprompt.backbones import load_backbone
from vlprompt.backbones.loading import load_clip
from vlprompt.errors import VLPromptError

transformers = pytest.importorskip("transformers")


def _save_tiny_clip(directory, hidden_act="quick_gelu", eps=1e-5, seed=0):
    torch.manual_seed(seed)
    text = transformers.CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77, hidden_act=hidden_act, layer_norm_eps=eps,
    )  # fmt: skip
    vision = transformers.CLIPVisionConfig(
        hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=3, image_size=32,
        patch_size=8, hidden_act=hidden_act, layer_norm_eps=eps,
    )  # fmt: skip
    config = transformers.CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16, logit_scale_init_value=3.0
    )
    model = transformers.CLIPModel(config).eval()
    with torch.no_grad():  # non-trivial norms and biases, so that a wrong mapping shows
        for name, p in model.named_parameters():
            if "norm" in name or "bias" in name or "class_embedding" in name:
                p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(directory)
    return model


def _features(hf):
    return hf.pooler_output if hasattr(hf, "pooler_output") else hf


@pytest.mark.parametrize(("hidden_act", "eps"), [("quick_gelu", 1e-5), ("gelu", 1e-6)])
def test_features_equal_transformers(tmp_path, hidden_act, eps):
    ref = _save_tiny_clip(tmp_path / "clip", hidden_act, eps)
    backbone = load_backbone(str(tmp_path / "clip"), device="cpu")
    assert backbone.spec.quick_gelu == (hidden_act == "quick_gelu")
    assert "hidden_act" in backbone.spec.activation_reason
    assert backbone.clip.visual.ln_pre.eps == eps and backbone.clip.ln_final.eps == eps
    ids = backbone.tokenize(["a photo of a dog.", "a very small red bird on a branch."])
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        want_t = _features(ref.get_text_features(input_ids=ids))
        want_i = _features(ref.get_image_features(pixel_values=images))
        got_t = backbone.encode_text(backbone.token_embed(ids), ids)
        got_i = backbone.encode_image(images)
    torch.testing.assert_close(got_t, want_t, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_i, want_i, atol=1e-5, rtol=0)
    torch.testing.assert_close(backbone.logit_scale, ref.logit_scale.exp().detach())
    # the open_clip model itself agrees too (the adapter adds nothing without prompts)
    torch.testing.assert_close(backbone.clip.encode_text(ids), want_t, atol=1e-5, rtol=0)


def test_folder_as_pretrained_must_match_the_backbone(tmp_path):
    _save_tiny_clip(tmp_path / "clip")
    with pytest.raises(VLPromptError, match=r"is a Hugging Face CLIPModel whose architecture is not --backbone RN50's"):
        load_clip("RN50", str(tmp_path / "clip"))
    own = json.loads((tmp_path / "clip" / "config.json").read_text())
    from vlprompt.backbones.hf_clip import hf_clip_config

    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(hf_clip_config(tmp_path / "clip")))
    model, spec = load_clip(str(arch), str(tmp_path / "clip"))
    assert spec.quick_gelu and own["text_config"]["hidden_act"] == "quick_gelu"


def test_no_code_from_the_folder_runs(tmp_path):
    _save_tiny_clip(tmp_path / "clip")
    marker = tmp_path / "ran"
    (tmp_path / "clip" / "modeling_custom.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    cfg = json.loads((tmp_path / "clip" / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (tmp_path / "clip" / "config.json").write_text(json.dumps(cfg))
    load_clip(str(tmp_path / "clip"))
    assert not marker.exists()


def test_incomplete_folder_is_one_line(tmp_path):
    _save_tiny_clip(tmp_path / "clip")
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "clip" / "model.safetensors"))
    state.pop("vision_model.post_layernorm.weight")
    save_file(state, str(tmp_path / "clip" / "model.safetensors"))
    with pytest.raises(VLPromptError, match="not a complete CLIPModel state dict: no vision_model.post_layernorm"):
        load_clip(str(tmp_path / "clip"))
