"""The tokenizer of a backbone, from its model config: CLIP's BPE for CLIP-style text towers, the Hugging Face
tokenizer open_clip names in ``text_cfg.hf_tokenizer_name`` otherwise (SigLIP / SigLIP 2's SentencePiece
tokenizers), always through open_clip's own wrappers so that ids, padding and cleaning are the model's.

A Hugging Face tokenizer is read from the weights' folder when it holds one (open_clip's Hub repositories and
their local copies do), else from ``hf_tokenizer_name`` (a Hub repository, downloaded when the network is
reachable and failing within seconds otherwise, or a local tokenizer folder). It needs ``transformers``, an
optional extra: without it, one line names ``pip install 'vlprompt[siglip]'``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

from vlprompt.errors import VLPromptError

#: files of a saved Hugging Face tokenizer, any one of which marks a tokenizer folder
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model", "tokenizer.model")
EXTRA_HINT = "pip install 'vlprompt[siglip]'"


def _tokenizer_folder(path: Optional[Path]) -> Optional[Path]:
    if path is None:
        return None
    folder = path if path.is_dir() else path.parent
    return folder if any((folder / name).is_file() for name in HF_TOKENIZER_FILES) else None


def hf_tokenizer(backbone: str, text_cfg: Dict, weights_path: Optional[Path] = None):
    """open_clip's ``HFTokenizer`` for ``text_cfg`` (see the module doc for where it is read from)."""
    name = text_cfg["hf_tokenizer_name"]
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise VLPromptError(
            f"--backbone {backbone} uses the Hugging Face tokenizer {name!r}, which needs transformers: {EXTRA_HINT}"
        ) from None
    from open_clip.tokenizer import HFTokenizer

    from vlprompt.backbones.loading import _host_reachable

    folder = _tokenizer_folder(weights_path) or _tokenizer_folder(Path(name).expanduser())
    source = str(folder) if folder is not None else name
    if folder is None:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        if offline or not _host_reachable(endpoint):
            raise VLPromptError(
                f"cannot fetch the tokenizer {name!r} of --backbone {backbone} (offline); put its files "
                f"({', '.join(HF_TOKENIZER_FILES[:2])}) in the --pretrained folder"
            )
    try:
        return HFTokenizer(
            source, context_length=text_cfg.get("context_length", 77), **text_cfg.get("tokenizer_kwargs", {})
        )
    except (OSError, ValueError) as exc:
        raise VLPromptError(f"cannot load the tokenizer {source!r} of --backbone {backbone}: {exc}") from None


def make_tokenizer(backbone: str, config: Dict, weights_path: Optional[Path] = None):
    """The tokenizer of a backbone built from ``config``; None = CLIP's BPE at the model's context length (made
    on first use by ``PromptableCLIP.tokenize``)."""
    text_cfg = config.get("text_cfg", {})
    if text_cfg.get("hf_tokenizer_name"):
        return hf_tokenizer(backbone, text_cfg, weights_path)
    return None


def prompt_start(tokenizer) -> int:
    """How many special tokens ``tokenizer`` puts before the text (where prompt vectors go): the first position
    at which the ids of ``"x"`` and ``"x x"`` differ, minus one — 1 for CLIP's ``[SOS] x [EOT]``, 0 for SigLIP's
    ``x [EOS]``."""
    one, two = tokenizer(["x", "x x"])
    differ = (one != two).nonzero()
    return int(differ[0]) - 1 if len(differ) else 0
