"""KgCoOp's knowledge-guided regulariser (Yao et al., "Visual-Language Prompt Tuning with Knowledge-guided
Context Optimization", CVPR 2023, Eqs. 5-6), the ``kg`` add-on; ``kgcoop`` = ``coop+kg``.

The learned class text features ŵ_k are pulled towards the frozen zero-shot features w_k^clip of the
dataset's hand-crafted KgCoOp template (``LabelSpace.kgcoop_template``, e.g. DTD's
``a photo of a {}, a type of texture.``; the plain template when the dataset has none):

    L = CE + λ · L_kg,      L_kg = 1 − (1/K) Σ_k cos(ŵ_k, ŵ_k^clip)          (cosine eps 1e-7)

over **all** K classes of the current label space (:func:`kg_loss`). The targets depend on the class
names, so they are a non-persistent buffer rebuilt by :meth:`KgAddOn.set_classnames`.

λ (``kg.weight``) differs between sources: 8.0 in the official base-to-new runs
(the default here and the ``kgcoop`` ``b2n`` preset), 2.0 in DePT's KgCoOp (the ``dept`` preset), and 1.0
as the default of the reference ``train.py``. The ``kgcoop`` presets initialise CoOp's context from
"a photo of a" (M = 4), as KgCoOp always does when ``CTX_INIT`` is set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vlprompt.addons.base import AddOn
from vlprompt.addons.kg.config import KgConfig
from vlprompt.capabilities import Capability
from vlprompt.methods.prompts import hand_crafted_features

COSINE_EPS = 1e-7


def kg_loss(text: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``1 − mean_k cos(ŵ_k, ŵ_k^clip)`` for text features ``[K, E]`` and targets ``[K, E]``.

    Both are L2-normalised first, then compared with ``cosine_similarity(eps=1e-7)`` as in the reference.
    """
    text = F.normalize(text.float(), dim=-1)
    targets = F.normalize(targets.float(), dim=-1)
    return 1.0 - F.cosine_similarity(text, targets, dim=-1, eps=COSINE_EPS).mean()


class KgAddOn(AddOn):
    requires = frozenset({Capability.SHARED_TEXT, Capability.TRAINED_TEXT})

    def __init__(self, task, config: KgConfig):
        super().__init__(task, config)
        self.register_buffer("targets", None, persistent=False)

    def set_classnames(self, space) -> None:
        template = self.config.template or space.kgcoop_template or space.template
        self.targets = hand_crafted_features(self.backbone, space.classnames, [template])

    def losses(self, out, labels, step):
        return {"kg": self.config.weight * kg_loss(out.text, self.targets)}
