"""An offline synthetic "toy world" where vision-language pretraining and prompt learning are real.

* :mod:`vlprompt.toy.world` — procedurally generated scenes of coloured, patterned shapes, their
  captions, and the three rendering styles whose differences form the domain gap;
* :mod:`vlprompt.toy.datasets` — the downstream datasets ``toy-b2n`` (base-to-new), ``toy-shift``
  (domain shift) and ``toy-xd`` (cross-dataset), registered in ``vlprompt.data.base.DATASETS`` when the
  module is imported, generated to disk on first use;
* :mod:`vlprompt.toy.pretrain` — the deterministic contrastive pretraining recipe of the toy CLIP;
* :mod:`vlprompt.toy.model` — the shipped toy CLIP (``load_toy_clip``), a tiny open_clip ``CLIP`` on
  the standard CLIP tokenizer and vocabulary;
* :mod:`vlprompt.toy.headroom` — the zero-shot / linear-probe check that prompt learning has room.

Importing this package imports nothing heavy; import the submodules you need.
"""

#: the version of the world's sampling and rendering (:mod:`vlprompt.toy.world`); bump it whenever either changes:
#: cached datasets are stored per version (kept here so that locating them imports no image library)
WORLD_VERSION = 1
