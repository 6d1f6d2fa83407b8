"""SigLIP-style backbones: their own tokenizer (made locally here), a bidirectional text tower pooling the last
position, an attention-pool image head and a learned logit bias (issue 20, item 2)."""

import json
import sys

import pytest
import torch

import tiny_towers
from vlprompt.backbones import load_backbone
from vlprompt.errors import VLPromptError

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def siglip_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("siglip")
    vocab = tiny_towers.save_siglip_tokenizer(root / "tokenizer", ["dog", "cat", "bird", "frog"])
    cfg = root / "siglip.json"
    cfg.write_text(json.dumps(tiny_towers.tiny_siglip_config(root / "tokenizer", vocab)))
    return cfg


def test_tokenizer_is_the_models_own(siglip_files):
    bb = load_backbone(str(siglip_files), "none", device="cpu")
    ids = bb.tokenize(["a photo of a dog.", "x x cat"])
    # no start token: text from position 0, "</s>" (1) after it, padding (0) up to the 16-token context
    assert ids[0, :6].tolist() == [4, 5, 6, 4, 13, 1] and ids[1, :4].tolist() == [3, 3, 14, 1]
    assert ids.shape == (2, 16) and bool((ids[:, 6:] == 0).all())


def test_missing_transformers_is_one_line_naming_the_extra(siglip_files, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(VLPromptError, match=r"needs transformers: pip install 'vlprompt\[siglip\]'$"):
        load_backbone(str(siglip_files), "none", device="cpu")


def test_unreachable_hub_tokenizer_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = tiny_towers.tiny_siglip_config("timm/ViT-B-16-SigLIP", 32000)
    (tmp_path / "siglip.json").write_text(json.dumps(cfg))
    with pytest.raises(VLPromptError, match="cannot fetch the tokenizer 'timm/ViT-B-16-SigLIP'.*offline"):
        load_backbone(str(tmp_path / "siglip.json"), "none", device="cpu")


def test_prompts_go_where_the_sequences_start(siglip_files, tiny_vit):
    bb = load_backbone(str(siglip_files), "none", device="cpu")
    assert bb.prompt_start == 0 and tiny_vit.prompt_start == 1  # SigLIP: no start token; CLIP: after SOS
    from vlprompt.methods.prompts import ClassPrompts

    prompts = ClassPrompts(bb, ["dog", "cat"], "x x", 2)
    ctx = torch.randn(2, 32)
    emb = prompts.assemble(ctx)
    assert emb.shape == (2, 16, 32) and torch.equal(emb[:, :2], ctx.expand(2, -1, -1))
    torch.testing.assert_close(emb[:, 2:], bb.token_embed(prompts.ids)[:, 2:])  # the text after the context
