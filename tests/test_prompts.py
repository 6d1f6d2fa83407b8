"""Prompt assembly (METHODS §1.2, §4.2): placeholders, word init, class-token positions, EOT pooling."""

import pytest
import torch

from vlprompt.errors import VLPromptError
from vlprompt.methods.coop.config import CoOpConfig
from vlprompt.methods.coop.model import CoOp
from vlprompt.methods.prompts import ClassPrompts, init_context_from_words
from vlprompt.task import LabelSpace


def test_placeholder_reserves_n_ctx_positions(tiny_vit):
    p = ClassPrompts(tiny_vit, ["dog", "sea_lion"], "X X X", 3)
    assert p.classnames == ["dog", "sea lion"]
    assert p.ids[0, :4].tolist() == [49406, 343, 343, 343]
    # EOT pooling index = argmax of ids = after "name ." ; sequences are cut right after the longest EOT
    assert p.ids.shape[1] == int(p.ids.argmax(-1).max()) + 1
    assert p.prefix.shape == (2, 1, 64) and p.suffix.shape == (2, p.ids.shape[1] - 4, 64)


def test_class_token_positions(tiny_vit):
    p = ClassPrompts(tiny_vit, ["sea lion", "dog"], "X X X X", 4)
    ctx = torch.arange(4 * 64, dtype=torch.float).view(4, 64)
    end, middle, front = (p.assemble(ctx, pos) for pos in ("end", "middle", "front"))
    name = p.suffix[0, :2]  # "sea lion" is two BPE tokens
    assert p.name_lens == [2, 1]
    assert torch.equal(end[0, 1:5], ctx) and torch.equal(end[0, 5:7], name)
    assert torch.equal(middle[0, 1:3], ctx[:2]) and torch.equal(middle[0, 3:5], name)
    assert torch.equal(middle[0, 5:7], ctx[2:]) and torch.equal(middle[0, 7], p.suffix[0, 2])  # "."
    assert torch.equal(front[0, 1:3], name) and torch.equal(front[0, 3:7], ctx)
    assert end.shape == middle.shape == front.shape  # same length: EOT stays where the ids say


def test_word_init_sets_n_ctx_and_matches_embeddings(tiny_vit):
    space = LabelSpace(["dog", "cat"])
    coop = CoOp(tiny_vit, CoOpConfig(n_ctx=4, ctx_init="a photo of a"), space)
    assert coop.ctx.shape == (4, 64)
    # the reference silently takes n_ctx from the words; here a mismatch is refused with the fix
    with pytest.raises(VLPromptError, match="has 4 words but coop.n_ctx=16; .*--set coop.n_ctx=4"):
        CoOpConfig(n_ctx=16, ctx_init="a photo of a")
    assert torch.equal(coop.ctx.data, init_context_from_words(tiny_vit, "a photo of a", 4))
    # with the init context untouched, CoOp's text features equal the hand-crafted prompt's features
    ids = tiny_vit.tokenize(["a photo of a dog.", "a photo of a cat."])
    assert torch.allclose(coop.text_features(), tiny_vit.clip.encode_text(ids), atol=1e-5)
