"""What the prompts say: ``vlprompt analyze prompts --run DIR``.

For every learned prompt vector p (every position of every tensor of ``learner.prompt_vectors()``: CoOp's
``ctx``, the deep text prompts ``text_deep``, VPT's ``vision_ctx`` / ``vision_deep``, ...): its norm ‖p‖₂ and,
where it lives in the token-embedding space (a text-tower tensor as wide as the vocabulary's embeddings), the
K vocabulary tokens e_i nearest to it in Euclidean distance ‖p − e_i‖₂ — the reading of the reference CoOp's
``interpret_prompt.py`` (Zhou et al., IJCV 2022, Sec. 4.4), for any learner. Deep text prompts are compared
with the same (input) vocabulary although they enter deeper blocks. Vision prompts live in the image tower's
token space, which has no vocabulary: only their norms are shown.

A distance alone is hard to read, so the vocabulary's own scale is shown beside it: the median, over tokens,
of the distance from a token to its nearest *other* token (over a seeded sample of ``sample`` tokens when the
vocabulary is larger). A prompt vector much closer to a word than that reads as that word; one as far as or
farther than it reads as no word at all.

Distances are found by a chunked matrix product and recomputed exactly (‖p − e_i‖ by subtraction) for the
candidates kept, so a vector equal to a token embedding is at distance exactly 0.
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Optional

import torch

from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError

CHUNK = 4096
NN_SAMPLE = 2000


def vocabulary(backbone) -> torch.Tensor:
    """The frozen token-embedding table ``[V, D]`` (fp32) of the backbone's text tower."""
    embedding = getattr(getattr(backbone.text_tower, "module", None), "token_embedding", None)
    if not isinstance(embedding, torch.nn.Embedding):
        raise VLPromptError("this backbone's text tower exposes no token-embedding table to compare prompts with")
    return embedding.weight.detach().float()


def nearest(vectors: torch.Tensor, table: torch.Tensor, k: int, self_ids: Optional[torch.Tensor] = None):
    """(distances, ids) ``[N, k]`` of the ``k`` rows of ``table`` nearest to each of ``vectors`` ``[N, D]``;
    ``self_ids``: vector i is row ``self_ids[i]`` of the table, which is skipped."""
    keep = min(table.shape[0], k + 8)
    sq = (table * table).sum(-1)
    cand_d, cand_i = [], []
    for start in range(0, vectors.shape[0], CHUNK):
        block = vectors[start : start + CHUNK]
        d2 = sq[None, :] - 2 * block @ table.T + (block * block).sum(-1, keepdim=True)
        mine = None if self_ids is None else self_ids[start : start + CHUNK]
        if mine is not None:
            d2[torch.arange(block.shape[0]), mine] = float("inf")
        cand = d2.topk(keep, dim=-1, largest=False).indices
        exact = (block[:, None, :] - table[cand]).norm(dim=-1)
        if mine is not None:
            exact[cand == mine[:, None]] = float("inf")
        order = exact.argsort(dim=-1)[:, :k]
        cand_d.append(exact.gather(1, order))
        cand_i.append(cand.gather(1, order))
    return torch.cat(cand_d), torch.cat(cand_i)


def typical_distance(table: torch.Tensor, sample: int = NN_SAMPLE, seed: int = 0) -> Dict:
    """The median over tokens of the distance to the nearest other token (a seeded sample of the vocabulary)."""
    n = table.shape[0]
    ids = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:sample] if n > sample else torch.arange(n)
    distances, _ = nearest(table[ids], table, 1, self_ids=ids)
    return {"median_nn_distance": float(distances[:, 0].median()), "tokens_sampled": int(ids.numel())}


def token_text(tokenizer, token_id: int) -> str:
    """A token as text: open_clip's BPE decoder (CLIP), else a Hugging Face tokenizer's token string."""
    if hasattr(tokenizer, "decoder") and isinstance(tokenizer.decoder, dict):
        return tokenizer.decode([token_id]).strip() or tokenizer.decoder[token_id]
    inner = getattr(tokenizer, "tokenizer", tokenizer)
    return str(inner.convert_ids_to_tokens(int(token_id)))


def _tower(name: str) -> str:
    return "vision" if name.startswith("vision") else "text"


def describe(learner, backbone, k: int = 5, sample: int = NN_SAMPLE) -> Dict:
    """Norms and nearest tokens of every prompt vector of ``learner``; see the module docstring."""
    vectors = learner.prompt_vectors()
    if not vectors:
        raise VLPromptError(f"method {learner.name!r} has no learned prompt vectors to describe")
    if k < 1:
        raise VLPromptError(f"--topk {k}: give at least 1")
    table = vocabulary(backbone)
    space = {n: _tower(n) == "text" and t.shape[-1] == table.shape[1] for n, t in vectors.items()}
    out: Dict = {"vocabulary": None}
    if any(space.values()):
        backbone.tokenize(["x"])  # makes sure the tokenizer exists (open_clip creates CLIP's lazily)
        out["vocabulary"] = {"tokens": table.shape[0], "dim": table.shape[1], **typical_distance(table, sample)}
    tensors: List[Dict] = []
    for name, tensor in vectors.items():
        flat = tensor.detach().float().cpu().reshape(-1, tensor.shape[-1])
        tower, in_space = _tower(name), space[name]
        entry = {"name": name, "shape": list(tensor.shape), "tower": tower, "token_space": in_space}
        if not in_space:
            entry["note"] = f"{tower} prompts are not in the token space (width {tensor.shape[-1]}): norms only"
        found = nearest(flat, table, k) if in_space else None
        rows = []
        for i, index in enumerate(itertools.product(*(range(s) for s in tensor.shape[:-1]))):
            row = {"index": list(index), "norm": float(flat[i].norm())}
            if found is not None:
                row["nearest"] = [{"token": token_text(backbone.tokenizer, int(t)), "id": int(t), "distance": float(d)}
                                  for d, t in zip(found[0][i], found[1][i])]  # fmt: skip
            rows.append(row)
        entry["vectors"] = rows
        tensors.append(entry)
    out["tensors"] = tensors
    if Capability.IMAGE_PROMPTS in learner.provides and not any(t["tower"] == "vision" for t in tensors):
        out["note"] = "the image tower's prompts are computed from the text prompts (no vision prompt parameters)"
    return out


def format_text(result: Dict, header: Optional[str] = None) -> str:
    vocab = result["vocabulary"]
    lines = [header] if header else []
    if vocab is not None:
        typical = vocab["median_nn_distance"]
        lines.append(
            f"vocabulary: {vocab['tokens']} tokens × {vocab['dim']}; typical distance between vocabulary tokens "
            f"(median nearest-neighbour distance over {vocab['tokens_sampled']} tokens): {typical:.4f}"
        )
        lines.append("a prompt vector much closer to a token than that reads as the word; as far or farther: no word")
    for t in result["tensors"]:
        lines.append("")
        lines.append(f"{t['name']} {t['shape']} ({t['tower']} tower)" + (f": {t['note']}" if "note" in t else ""))
        for row in t["vectors"]:
            where = ",".join(map(str, row["index"]))
            line = f"  [{where}] norm {row['norm']:.4f}"
            if "nearest" in row:
                first = row["nearest"][0]["distance"]
                ratio = f"{first / typical:.2f}× typical" if typical > 0 else ""
                words = "  ".join(f"{n['token']!s} ({n['distance']:.4f})" for n in row["nearest"])
                line += f"  nearest {first:.4f} ({ratio}):  {words}"
            lines.append(line)
    if "note" in result:
        lines += ["", result["note"]]
    return "\n".join(lines)


def analyze_run(run, *, k: int = 5, as_json: bool = False, quiet: bool = False, **backbone_options) -> Dict:
    """``vlprompt analyze prompts --run DIR``: the trained prompts of a run directory."""
    import json

    from vlprompt.pipeline.trained import open_trained

    trained = open_trained(run, **backbone_options)
    task = trained.task()
    with torch.no_grad():
        result = {"run": str(run), "method": trained.config.method, **describe(task.learner, trained.backbone, k)}
    if not quiet:
        if as_json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            print(format_text(result, f"prompts of {run} ({result['method']})"))
    return result
