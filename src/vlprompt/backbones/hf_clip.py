"""Hugging Face ``transformers`` ``CLIPModel`` folders read into the open_clip architecture they correspond to.

A folder written by ``CLIPModel.save_pretrained`` (``config.json`` + ``model.safetensors``, e.g. a copy of
``openai/clip-vit-base-patch16``) holds the same network as open_clip's ``CLIP`` with a ViT image tower and
the native text transformer (Radford et al., ICML 2021); only the names and the attention layout differ. This
module reads ``config.json`` as data (no code from the folder is imported or run, and ``transformers`` itself
is not needed) and maps:

====================================================  ==============================================
``config.json``                                        open_clip model config
====================================================  ==============================================
``projection_dim``                                     ``embed_dim``
``vision_config``: ``hidden_size``, ``num_hidden_      ``vision_cfg``: ``width``, ``layers``,
layers``, ``num_attention_heads``, ``intermediate_     ``head_width = hidden/heads``, ``mlp_ratio``,
size``, ``image_size``, ``patch_size``                 ``image_size``, ``patch_size``
``text_config``: ``hidden_size``, ``num_hidden_        ``text_cfg``: ``width``, ``layers``, ``heads``,
layers``, ``num_attention_heads``, ``intermediate_     ``mlp_ratio``, ``context_length``, ``vocab_size``
size``, ``max_position_embeddings``, ``vocab_size``
``hidden_act`` (both towers)                           ``quick_gelu`` (``quick_gelu`` -> QuickGELU)
``layer_norm_eps``                                     ``norm_kwargs.eps`` (when not open_clip's 1e-5)
``text_config.eos_token_id``                           EOT pooling: ``argmax`` of the ids (the EOT id is the
                                                       largest, or the legacy id 2), else the first EOT
====================================================  ==============================================

and the weights: ``self_attn.{q,k,v}_proj`` stacked into ``attn.in_proj_*`` (q, k, v order), ``out_proj``,
``layer_norm1/2`` -> ``ln_1/2``, ``mlp.fc1/fc2`` -> ``mlp.c_fc/c_proj``, the embeddings, ``pre_layrnorm`` (HF's
spelling) -> ``ln_pre``, ``post_layernorm`` -> ``ln_post``, ``final_layer_norm`` -> ``ln_final``, and the
bias-free projections transposed (``visual_projection.weight.T`` -> ``visual.proj``, ``text_projection.weight.T``
-> ``text_projection``), ``logit_scale`` as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import torch

from vlprompt.errors import VLPromptError

HF_CONFIG_NAME = "config.json"
HF_WEIGHTS_NAME = "model.safetensors"
#: open_clip's LayerNorm epsilon (torch's default)
OPEN_CLIP_LN_EPS = 1e-5
#: the eos id of HF CLIP configs written before ``eos_token_id`` was set right: pooling was the argmax
LEGACY_EOS_ID = 2


def read_hf_config(directory: Path) -> Optional[Dict]:
    """The ``config.json`` of a ``transformers`` ``CLIPModel`` folder, or None when ``directory`` is not one."""
    path = Path(directory) / HF_CONFIG_NAME
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(cfg, dict) or cfg.get("model_type") != "clip":
        return None
    return cfg


def is_hf_clip_dir(path) -> bool:
    return Path(path).is_dir() and read_hf_config(Path(path)) is not None


def _tower(cfg: Dict, key: str, directory: Path) -> Dict:
    tower = cfg.get(key)
    if not isinstance(tower, dict):
        raise VLPromptError(f"{directory / HF_CONFIG_NAME}: no {key} (not a transformers CLIPModel config)")
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
               if k not in tower]  # fmt: skip
    if missing:
        raise VLPromptError(f"{directory / HF_CONFIG_NAME}: {key} lacks {', '.join(missing)}")
    return tower


def _norm(tower: Dict) -> Dict:
    eps = float(tower.get("layer_norm_eps", OPEN_CLIP_LN_EPS))
    return {} if eps == OPEN_CLIP_LN_EPS else {"norm_kwargs": {"eps": eps}}


def hf_clip_config(directory: Path) -> Dict:
    """The open_clip model config (with ``quick_gelu``) of the ``CLIPModel`` in ``directory`` (table above)."""
    directory = Path(directory)
    cfg = read_hf_config(directory)
    if cfg is None:
        raise VLPromptError(f"{directory} is not a transformers CLIPModel folder (config.json with model_type clip)")
    vision, text = _tower(cfg, "vision_config", directory), _tower(cfg, "text_config", directory)
    acts = {vision.get("hidden_act", "quick_gelu"), text.get("hidden_act", "quick_gelu")}
    if len(acts) > 1 or not acts <= {"quick_gelu", "gelu"}:
        raise VLPromptError(
            f"{directory / HF_CONFIG_NAME}: hidden_act {', '.join(sorted(acts))} is not supported "
            "(both towers quick_gelu or both gelu)"
        )
    if int(vision.get("num_channels", 3)) != 3:
        raise VLPromptError(f"{directory / HF_CONFIG_NAME}: vision num_channels must be 3")
    v_width, v_heads = int(vision["hidden_size"]), int(vision["num_attention_heads"])
    t_width = int(text["hidden_size"])
    vocab = int(text.get("vocab_size", 49408))
    eos = text.get("eos_token_id", LEGACY_EOS_ID)
    pool = {} if eos in (LEGACY_EOS_ID, vocab - 1) else {"pool_type": "eos", "eos_id": int(eos)}
    return {
        "embed_dim": int(cfg.get("projection_dim", 512)),
        "quick_gelu": acts == {"quick_gelu"},
        "vision_cfg": {
            "image_size": int(vision.get("image_size", 224)),
            "patch_size": int(vision.get("patch_size", 32)),
            "layers": int(vision["num_hidden_layers"]),
            "width": v_width,
            "head_width": v_width // v_heads,
            "mlp_ratio": int(vision["intermediate_size"]) / v_width,
            **_norm(vision),
        },
        "text_cfg": {
            "context_length": int(text.get("max_position_embeddings", 77)),
            "vocab_size": vocab,
            "width": t_width,
            "heads": int(text["num_attention_heads"]),
            "layers": int(text["num_hidden_layers"]),
            "mlp_ratio": int(text["intermediate_size"]) / t_width,
            **pool,
            **_norm(text),
        },
    }


def _blocks(hf: Dict[str, torch.Tensor], src: str, dst: str, layers: int) -> Dict[str, torch.Tensor]:
    out = {}
    for i in range(layers):
        a, b = f"{src}.encoder.layers.{i}", f"{dst}.resblocks.{i}"
        for part in ("weight", "bias"):
            qkv = [hf[f"{a}.self_attn.{p}_proj.{part}"] for p in "qkv"]
            out[f"{b}.attn.in_proj_{part}"] = torch.cat(qkv)
            out[f"{b}.attn.out_proj.{part}"] = hf[f"{a}.self_attn.out_proj.{part}"]
            out[f"{b}.ln_1.{part}"] = hf[f"{a}.layer_norm1.{part}"]
            out[f"{b}.ln_2.{part}"] = hf[f"{a}.layer_norm2.{part}"]
            out[f"{b}.mlp.c_fc.{part}"] = hf[f"{a}.mlp.fc1.{part}"]
            out[f"{b}.mlp.c_proj.{part}"] = hf[f"{a}.mlp.fc2.{part}"]
    return out


def hf_clip_state_dict(hf: Dict[str, torch.Tensor], config: Dict, source: str) -> Dict[str, torch.Tensor]:
    """open_clip ``CLIP`` state dict from a ``CLIPModel`` state dict (names mapped as in the module doc)."""
    v, t = "vision_model", "text_model"
    try:
        out = {
            "visual.class_embedding": hf[f"{v}.embeddings.class_embedding"],
            "visual.conv1.weight": hf[f"{v}.embeddings.patch_embedding.weight"],
            "visual.positional_embedding": hf[f"{v}.embeddings.position_embedding.weight"],
            "visual.proj": hf["visual_projection.weight"].t().contiguous(),
            "token_embedding.weight": hf[f"{t}.embeddings.token_embedding.weight"],
            "positional_embedding": hf[f"{t}.embeddings.position_embedding.weight"],
            "text_projection": hf["text_projection.weight"].t().contiguous(),
            "logit_scale": hf["logit_scale"],
        }
        for part in ("weight", "bias"):
            out[f"visual.ln_pre.{part}"] = hf[f"{v}.pre_layrnorm.{part}"]
            out[f"visual.ln_post.{part}"] = hf[f"{v}.post_layernorm.{part}"]
            out[f"ln_final.{part}"] = hf[f"{t}.final_layer_norm.{part}"]
        out.update(_blocks(hf, v, "visual.transformer", config["vision_cfg"]["layers"]))
        out.update(_blocks(hf, t, "transformer", config["text_cfg"]["layers"]))
    except KeyError as exc:
        raise VLPromptError(f"{source} is not a complete CLIPModel state dict: no {exc.args[0]}") from None
    for key in ("visual_projection.bias", "text_projection.bias"):
        if key in hf:
            raise VLPromptError(f"{source}: {key} is not supported (CLIP's projections have no bias)")
    return out
