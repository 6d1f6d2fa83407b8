"""Tiny random versions of the timm image towers open_clip uses (EVA02 with RoPE, SigLIP with its attention-pool
head, a hybrid CNN+ViT), registered with timm under test-only names, and tiny open_clip configs using them."""

from __future__ import annotations

import timm
from timm.models import register_model

#: the real entry points, shrunk to 2 blocks of width 32 on 32-pixel images with 8-pixel patches (a 4x4 grid)
TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


@register_model
def vlprompt_tiny_eva02(pretrained=False, **kwargs):
    return timm.models.eva.eva02_base_patch16_clip_224(pretrained=False, ref_feat_shape=(4, 4), **TINY, **kwargs)


@register_model
def vlprompt_tiny_siglip(pretrained=False, **kwargs):
    return timm.models.vision_transformer.vit_base_patch16_siglip_224(pretrained=False, **TINY, **kwargs)


@register_model
def vlprompt_tiny_convnext(pretrained=False, **kwargs):
    return timm.models.convnext.convnext_atto(pretrained=False, **kwargs)


TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}
#: EVA02-B-16's open_clip config, tiny (class-token pooling, the trunk's classifier as projection)
TINY_EVA02 = {
    "embed_dim": 16,
    "custom_text": True,
    "vision_cfg": {"image_size": 32, "timm_model_name": "vlprompt_tiny_eva02", "timm_model_pretrained": False,
                   "timm_pool": "token", "timm_proj": None},
    "text_cfg": TEXT,
}  # fmt: skip
#: ViT-B-16-SigLIP's open_clip config, tiny: attention-pool head, bidirectional text tower pooling the last token,
#: learned logit bias
TINY_SIGLIP_VISION = {"image_size": 32, "timm_model_name": "vlprompt_tiny_siglip", "timm_model_pretrained": False,
                      "timm_pool": "map", "timm_proj": "none"}  # fmt: skip
TINY_CONVNEXT = {
    "embed_dim": 16,
    "custom_text": True,
    "vision_cfg": {"image_size": 32, "timm_model_name": "vlprompt_tiny_convnext", "timm_model_pretrained": False,
                   "timm_pool": "avg", "timm_proj": "linear"},
    "text_cfg": TEXT,
}  # fmt: skip

#: the words of the tiny SigLIP-style tokenizer (SentencePiece-like: no start token, "</s>" ends every sequence)
SIGLIP_WORDS = ["<pad>", "</s>", "<unk>", "x", "a", "photo", "of", "an", "the", "picture", "small", "big", "type"]


def save_siglip_tokenizer(directory, extra_words=()):
    """A word-level Hugging Face tokenizer saved to ``directory``: ids as SigLIP's tokenizer lays them out (text
    tokens from position 0, ``</s>`` after them, padding to the context length)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = list(dict.fromkeys([*SIGLIP_WORDS, *extra_words]))
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(str(directory))
    return len(words)


def tiny_siglip_config(tokenizer_dir, vocab_size, context_length=16):
    """ViT-B-16-SigLIP's open_clip config, tiny: attention-pool image head, bidirectional text tower pooling the
    last position with a biased projection, learned logit bias, the tokenizer in ``tokenizer_dir``."""
    return {
        "embed_dim": 32,
        "init_logit_bias": -10,
        "custom_text": True,
        "vision_cfg": TINY_SIGLIP_VISION,
        "text_cfg": {"context_length": context_length, "vocab_size": vocab_size, "width": 32, "heads": 2,
                     "layers": 2, "hf_tokenizer_name": str(tokenizer_dir),
                     "tokenizer_kwargs": {"clean": "canonicalize"}, "no_causal_mask": True, "proj_bias": True,
                     "pool_type": "last", "norm_kwargs": {"eps": 1e-06}},
    }  # fmt: skip


@register_model
def vlprompt_tiny_hybrid(pretrained=False, **kwargs):
    return timm.models.vision_transformer_hybrid.vit_tiny_r_s16_p8_224(pretrained=False, img_size=32, depth=1, **kwargs)


TINY_HYBRID = {**TINY_CONVNEXT, "vision_cfg": {**TINY_CONVNEXT["vision_cfg"], "timm_model_name": "vlprompt_tiny_hybrid",
                                               "timm_pool": "token"}}  # fmt: skip
