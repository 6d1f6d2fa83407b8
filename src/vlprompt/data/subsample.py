"""Base/new class split (CoOp ``OxfordPets.subsample_classes``, ``DATASET.SUBSAMPLE_CLASSES``).

Applied after few-shot sampling: take the distinct labels of train (of test for test-only datasets),
sorted ascending, n of them; ``base`` = the first ``ceil(n / 2)``, ``new`` = the rest. The chosen labels
are renumbered 0.. in that order, train/val/test keep only their items, and the class names (and the
per-label ``extra["imagenet_rows"]``) follow.
"""

from __future__ import annotations

import math

from vlprompt.config import SUBSAMPLES
from vlprompt.data.base import DatasetSplits, Datum
from vlprompt.errors import VLPromptError

#: ``extra`` entries holding one value per label, subset along with the classes
PER_LABEL_EXTRAS = ("imagenet_rows",)


def subsample_classes(dataset: DatasetSplits, subsample: str = "all") -> DatasetSplits:
    if subsample not in SUBSAMPLES:
        raise VLPromptError(f"--subsample {subsample!r} is not one of {', '.join(SUBSAMPLES)}")
    if subsample == "all":
        return dataset
    labels = sorted({d.label for d in (dataset.train or dataset.test)})
    m = math.ceil(len(labels) / 2)
    selected = labels[:m] if subsample == "base" else labels[m:]
    new_label = {old: new for new, old in enumerate(selected)}

    def keep(items):
        return [Datum(d.impath, new_label[d.label], d.classname, d.relpath) for d in items if d.label in new_label]

    extra = dict(dataset.extra)
    for key in PER_LABEL_EXTRAS:
        if key in extra:
            extra[key] = [extra[key][old] for old in selected]
    return dataset.with_items(
        train=keep(dataset.train),
        val=keep(dataset.val),
        test=keep(dataset.test),
        classnames=[dataset.classnames[old] for old in selected],
        extra=extra,
    )
