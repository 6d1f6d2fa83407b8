"""A Tip-Adapter cache as a reference checkpoint (``vlprompt convert --from tip-adapter``, ``--init-from``).

gaopengcuhk/Tip-Adapter's ``build_cache_model`` saves two bare tensors in its ``cache_dir``:
``keys_{K}shots.pt`` (the normalised keys, ``[E, N]``) and ``values_{K}shots.pt`` (the one-hot values,
``[N, K_classes]``, fp16); ``run_tip_adapter_F`` adds ``best_F_{K}shots.pt``, the weight of its adapter
(``nn.Linear(E, N)`` initialised with the keys transposed: Tip-Adapter-F's fine-tuned keys, ``[N, E]``), read as
``fine_tuned_keys`` ``[E, N]``. :func:`read_tip_cache` reads them (or a ``.safetensors`` file holding
``cache_keys``, ``cache_values`` and optionally ``fine_tuned_keys``) without executing code;
:func:`~vlprompt.convert.keymap.trainers` maps them to ``learner.cache_keys`` / ``learner.cache_values``. The
reference saves no searched β/α: a converted run holds the configured ``init_beta`` / ``init_alpha`` until
``vlprompt train --method tip_adapter --init-from RUN`` runs the search on the converted cache.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import torch

from vlprompt.convert.dassl import ReferenceCheckpoint
from vlprompt.convert.formats import TIP_ADAPTER as FORMAT
from vlprompt.errors import VLPromptError

_KEYS = re.compile(r"keys_(\d+)shots\.pt")


def _tensor(path: Path) -> torch.Tensor:
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise VLPromptError(f"cannot read {path} as a Tip-Adapter cache tensor: {exc}".splitlines()[0]) from None
    if not isinstance(value, torch.Tensor) or value.dim() != 2:
        raise VLPromptError(f"{path} is not a Tip-Adapter cache tensor (a 2-D tensor saved by build_cache_model)")
    return value


def read_tip_cache(path, shots: Optional[int] = None) -> ReferenceCheckpoint:
    """The cache in ``path`` (Tip-Adapter's cache folder, ``shots`` picking ``keys_{shots}shots.pt`` when it holds
    several, or a safetensors file) as ``{"cache_keys", "cache_values"}``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
        names = ("cache_keys", "cache_values", "fine_tuned_keys")
        return ReferenceCheckpoint({k: state[k] for k in names if k in state}, None, path, "")
    if not path.is_dir():
        raise VLPromptError(
            f"--from {FORMAT} {path}: give Tip-Adapter's cache folder (keys_Kshots.pt, values_Kshots.pt)"
        )
    found = sorted(int(m.group(1)) for p in path.iterdir() if (m := _KEYS.fullmatch(p.name)))
    if shots in found:
        k = shots
    elif len(found) == 1 and not shots:
        k = found[0]
    else:
        have = ", ".join(f"keys_{n}shots.pt" for n in found) or "no keys_Kshots.pt"
        raise VLPromptError(f"--from {FORMAT} {path}: {have} there; pass --shots K of the cache to convert")
    keys, values = _tensor(path / f"keys_{k}shots.pt"), _tensor(path / f"values_{k}shots.pt")
    if keys.shape[1] != values.shape[0]:
        raise VLPromptError(
            f"{path}: keys {list(keys.shape)} and values {list(values.shape)} do not fit (E x N, N x K)"
        )
    state = {"cache_keys": keys, "cache_values": values}
    fine_tuned = path / f"best_F_{k}shots.pt"
    if fine_tuned.is_file():
        weight = _tensor(fine_tuned).detach()  # the adapter's weight: the keys transposed, [N, E]
        if weight.shape != keys.t().shape:
            raise VLPromptError(f"{fine_tuned}: shape {list(weight.shape)} is not the cache's N x E")
        state["fine_tuned_keys"] = weight.t().contiguous()
    return ReferenceCheckpoint(state, None, path / f"keys_{k}shots.pt", "")
