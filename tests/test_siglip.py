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


def test_bidirectional_tower_takes_the_full_path(siglip_files, tiny_vit, monkeypatch, caplog):
    """A shared prefix is exact only under a causal mask: on SigLIP's bidirectional tower the prefix positions see
    the class tokens, so their states differ per class, and vlprompt encodes every prompt in full."""
    import logging

    from vlprompt.backbones.towers.openclip_text import BIDIRECTIONAL_NOTE
    from vlprompt.capabilities import Capability
    from vlprompt.methods.prompts import ClassPrompts

    with caplog.at_level(logging.INFO, logger="vlprompt.backbones.towers.openclip_text"):
        bb = load_backbone(str(siglip_files), "none", device="cpu")
        bb.with_options()  # another view of the same model says nothing more
    assert caplog.text.count(BIDIRECTIONAL_NOTE) == 1
    assert not {Capability.CAUSAL_TEXT, Capability.SHARED_PREFIX} & bb.capabilities("text")
    for backbone, differs in ((bb, True), (tiny_vit, False)):
        prompts = ClassPrompts(backbone, ["dog", "cat"], "x x x", 3)
        x = prompts.assemble(torch.randn(3, backbone.text_width))
        p = prompts.shared_len
        with torch.no_grad():
            x = x + backbone.text_tower.module.positional_embedding[: x.shape[1]]
            block = backbone.text_tower.blocks[0]
            full = backbone.run_block("text", block, x)[:, :p]
            alone = backbone.run_block("text", block, x[:, :p])  # what a shared prefix would compute
        assert (not torch.allclose(full, alone, atol=1e-4)) == differs
        assert full[0].allclose(full[1], atol=1e-5) != differs  # the prefix states depend on the class (SigLIP)
    assert not bb.text_prefix_sharable(prompts.shared_len)

    def refuse(*args, **kwargs):
        raise AssertionError("the shared-prefix path was used on a bidirectional tower")

    monkeypatch.setattr(bb.text_tower, "encode_shared", refuse)
    prompts = ClassPrompts(bb, ["dog", "cat"], "x x x", 3)
    ctx = torch.randn(3, 32)
    with torch.no_grad():
        got = prompts.encode(ctx)
        want = bb.encode_text(prompts.assemble(ctx), prompts.ids)
    torch.testing.assert_close(got, want)
    assert prompts.ids.shape[1] == 16  # no causal truncation: every position reaches the pooled last one


def test_features_and_biased_logits_equal_open_clip(siglip_files):
    bb = load_backbone(str(siglip_files), "none", device="cpu")
    ids = bb.tokenize(["a photo of a dog.", "a small cat"])
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        text = bb.encode_text(bb.token_embed(ids), ids)
        image = bb.encode_image(images)
        torch.testing.assert_close(text, bb.clip.encode_text(ids), atol=1e-5, rtol=0)
        torch.testing.assert_close(image, bb.clip.encode_image(images), atol=1e-5, rtol=0)
        f, t, scale, bias = bb.clip(images, ids)  # open_clip's own forward: normalised features, scale, bias
        want = scale * f @ t.t() + bias
    assert float(bb.logit_bias) == -10.0
    torch.testing.assert_close(bb.logits(image, text), want, atol=1e-5, rtol=0)

    from vlprompt import create_task

    task = create_task("zeroshot", bb, ["dog", "cat"]).eval()
    with torch.no_grad():
        got = task.predict(images=images)
        ids = bb.tokenize(["a photo of a dog.", "a photo of a cat."])
        t = bb.clip.encode_text(ids, normalize=True)
        f = bb.clip.encode_image(images, normalize=True)
    torch.testing.assert_close(got, bb.logit_scale * f @ t.t() + bb.logit_bias, atol=1e-4, rtol=0)
