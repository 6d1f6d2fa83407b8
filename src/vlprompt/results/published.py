"""Published numbers to compare a sweep with (``vlprompt table --paper``), each with its source.

Each component declares the tables its paper or repository publishes (``published`` in its ``config.py``,
:class:`~vlprompt.components.Published`): accuracies in percent, transcribed from the original repositories'
READMEs and result figures (the DePT figures re-run the baselines with DePT's 10-epoch configs). A table cell is
compared only with an entry of the same protocol, method and backbone.
"""

from __future__ import annotations

import re
from typing import List, Optional

from vlprompt.components import Published
from vlprompt.registry import declared


def published_tables() -> List[Published]:
    """Every registered component's published tables (:mod:`vlprompt.components`), learners then add-ons in name
    order."""
    return [entry for entries in declared("published") for entry in entries]


def _norm(backbone: Optional[str]) -> str:
    return re.sub(r"[^a-z0-9]", "", (backbone or "").lower())


def lookup(protocol: str, method: str, backbone: Optional[str]) -> Optional[Published]:
    """The published entry for ``method`` under ``protocol`` on ``backbone`` (``ViT-B-16`` = ``ViT-B/16``)."""
    for entry in published_tables():
        if entry.protocol == protocol and entry.method == method and _norm(entry.backbone) == _norm(backbone):
            return entry
    return None
