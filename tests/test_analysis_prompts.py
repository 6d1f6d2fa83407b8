"""`vlprompt analyze prompts --run DIR`: norms and nearest vocabulary tokens of the learned prompt vectors."""

import json

import pytest
import torch

from vlprompt.analysis.prompt_words import describe, format_text, nearest, typical_distance
from vlprompt.cli import main


@pytest.fixture(scope="module")
def toy_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("VLPROMPT_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


def train(root, method):
    out = root / method
    argv = ["train", "--method", method, "--dataset", "toy-b2n", "--shots", "1", "--epochs", "1", "--out", str(out)]
    assert main([*argv, "--batch-size", "32", "-q"]) == 0
    return out


def test_coop_initialised_from_words_reads_back_those_words_at_distance_zero():
    from vlprompt.api import create_task

    overrides = ["coop.n_ctx=4", "coop.ctx_init=a photo of a"]
    task = create_task("coop", "toy", ["cat", "dog"], overrides=overrides, device="cpu")
    with torch.no_grad():
        result = describe(task.learner, task.backbone, k=3)
    (ctx,) = result["tensors"]
    assert ctx["name"] == "ctx" and ctx["token_space"] and ctx["shape"] == [4, 64]
    assert [v["nearest"][0]["token"] for v in ctx["vectors"]] == ["a", "photo", "of", "a"]
    assert [v["nearest"][0]["distance"] for v in ctx["vectors"]] == [0.0, 0.0, 0.0, 0.0]
    assert all(v["nearest"][1]["distance"] > 0 for v in ctx["vectors"])
    emb = task.backbone.token_embed(task.backbone.tokenize(["a photo of a"]))[0, 1:5].float()
    assert [v["norm"] for v in ctx["vectors"]] == pytest.approx(emb.norm(dim=-1).tolist())
    text = format_text(result)
    assert "typical distance between vocabulary tokens" in text and "a (0.0000)" in text


def test_nearest_and_typical_distance_by_hand():
    table = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    d, i = nearest(torch.tensor([[0.9, 0.0]]), table, 2)
    assert i.tolist() == [[2, 0]] and d[0].tolist() == pytest.approx([0.1, 0.9])
    # nearest other token: 0->2 (1), 1->3 (sqrt(13)), 2->0 (1), 3->2 (sqrt 5): median of [1, 1, 2.236, 3.606]
    typical = typical_distance(table)
    assert typical["tokens_sampled"] == 4
    assert typical["median_nn_distance"] == pytest.approx(1.0)  # torch's median: the lower middle value


@pytest.mark.slow
def test_maple_and_vpt_runs_text_and_json(toy_cache, tmp_path, capsys):
    maple, vpt = train(tmp_path, "maple"), train(tmp_path, "vpt")
    capsys.readouterr()
    assert main(["analyze", "prompts", "--run", str(maple), "--json", "--topk", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    names = {t["name"]: t for t in result["tensors"]}
    assert set(names) == {"ctx", "text_deep"} and all(t["token_space"] for t in names.values())
    assert len(names["text_deep"]["vectors"]) == 3 * 2 and len(names["ctx"]["vectors"][0]["nearest"]) == 2
    assert "computed from the text prompts" in result["note"]
    assert main(["analyze", "prompts", "--run", str(vpt)]) == 0
    out = capsys.readouterr().out
    assert (
        "vision_ctx" in out
        and "vision prompts are not in the token space" in out
        and "nearest" not in out
        and "vocabulary" not in out
    )


def test_runs_without_prompts_are_refused(toy_cache, tmp_path, capsys):
    assert main(["analyze", "prompts", "--run", str(tmp_path / "nothing")]) == 2
    assert "weights" in capsys.readouterr().err
