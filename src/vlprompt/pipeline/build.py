"""Building a task on a loaded backbone (the run's encoder settings and precision), its feature cache, and
:func:`create_task` for your own training loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from vlprompt.config import BackboneConfig, RunConfig, make_config
from vlprompt.errors import VLPromptError
from vlprompt.pipeline.loading import load_backbone
from vlprompt.task import LabelSpace

if TYPE_CHECKING:  # torch and the task are imported where a model is built, so checks before that stay fast
    from vlprompt.task import PromptTask


def build_task(backbone, cfg: RunConfig, space: LabelSpace) -> PromptTask:
    """The task of ``cfg`` on ``backbone`` for ``space``, on the backbone's device, in the run's precision, with the
    run's encoder settings (shared prefix, chunk size, causal truncation, fp16 prompt rounding) bound to the task's
    view of the backbone."""
    from vlprompt.backbones.options import EncodeOptions
    from vlprompt.engine.precision import apply_fp16
    from vlprompt.task import PromptTask

    options = EncodeOptions.from_train(cfg.train)
    task = PromptTask(backbone, cfg.method, cfg.components, space, options).to(backbone.device)
    if cfg.train.precision == "fp16":
        apply_fp16(backbone, task)
    return task


def make_feature_cache(backbone, enabled: bool):
    """The frozen-feature cache of a run on ``backbone`` (``--no-feature-cache``: None)."""
    from vlprompt.engine.features import FeatureCache

    return FeatureCache(backbone) if enabled else None


def create_task(
    method: str,
    backbone: Union[str, Any] = "toy",
    classnames: Union[Sequence[str], LabelSpace, None] = None,
    *,
    pretrained: Optional[str] = None,
    preset: Optional[str] = None,
    protocol: Optional[str] = None,
    dataset: Optional[str] = None,
    overrides: Sequence[str] = (),
    template: str = "a photo of a {}.",
    device: str = "auto",
) -> PromptTask:
    """A :class:`~vlprompt.task.PromptTask` for your own training loop: ``method`` (e.g. ``"coop+nemesis"``) on
    ``backbone`` (a name / config path, or an already loaded backbone) for ``classnames`` (or a full
    :class:`~vlprompt.task.LabelSpace`), with the published preset (``preset`` / ``protocol`` / ``dataset``) and
    ``overrides`` (``"coop.n_ctx=4"``). Use ``task.training_step(...)``, ``task.param_groups(lr)`` and
    ``task.predict(...)``."""
    if classnames is None:
        raise VLPromptError("create_task needs the class names (or a LabelSpace) the task separates")
    space = classnames if isinstance(classnames, LabelSpace) else LabelSpace(list(classnames), template=template)
    if isinstance(backbone, str):
        backbone = load_backbone(BackboneConfig(name=backbone, pretrained=pretrained, device=device))
    cfg = make_config(method, dataset or "", protocol=protocol, preset=preset, overrides=overrides)
    return build_task(backbone, cfg, space)
