"""Label-space policy: which classes a model is asked to separate, and whether they are the ones it was trained on.

``seen`` (the trained classes, or — through ``imagenet_rows`` — ImageNet-A/-R against a 1000-class training space)
decides whether a head trained on the seen classes applies (DePT's fused head); the runner decides it explicitly,
nothing looks at dataset names.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from vlprompt.config import LABEL_SPACES
from vlprompt.errors import VLPromptError
from vlprompt.task.types import LabelSpace


def label_space(dataset, seen: bool = True, rows: Optional[List[int]] = None) -> LabelSpace:
    """The label space of a dataset (its class names and hand-crafted templates)."""
    from vlprompt.data.templates import ensemble_templates

    return LabelSpace(
        classnames=list(dataset.classnames),
        template=dataset.template,
        kgcoop_template=dataset.kgcoop_template or dataset.template,
        ensemble_templates=list(ensemble_templates(dataset)),
        seen=seen,
        rows=rows,
    )


def eval_label_space(dataset, trained: Sequence[str], requested: str = "auto") -> LabelSpace:
    """Seen when the classes are the trained ones (or, via ``imagenet_rows``, a subset of a 1000-class training
    space); unseen otherwise. ``requested`` = auto | seen | unseen."""
    if requested not in LABEL_SPACES:
        raise VLPromptError(f"--label-space must be one of {', '.join(LABEL_SPACES)}, got {requested!r}")
    rows = None
    if list(dataset.classnames) == list(trained):
        seen = True
    elif dataset.extra.get("imagenet_rows") and len(trained) == 1000:
        seen, rows = True, list(dataset.extra["imagenet_rows"])
    else:
        seen = False
    if requested == "seen" and not seen:
        raise VLPromptError(
            "--label-space seen: these classes are not the ones the run was trained on; use auto or unseen"
        )
    if requested == "unseen":
        seen, rows = False, None
    return label_space(dataset, seen=seen, rows=rows)
