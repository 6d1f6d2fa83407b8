"""Trained runs: open a run directory with its backbone (:func:`open_trained`), and predict with it
(:func:`load_run`, :class:`LoadedRun`, :class:`Prediction`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from vlprompt.config import BackboneConfig, RunConfig, check_template
from vlprompt.errors import VLPromptError
from vlprompt.pipeline.build import build_task
from vlprompt.pipeline.identity import architecture_id
from vlprompt.pipeline.loading import load_backbone
from vlprompt.pipeline.records import PathLike
from vlprompt.task import LabelSpace

if TYPE_CHECKING:
    import torch

    from vlprompt.task import PromptTask


def _check_architecture(trained: Dict[str, Any], backbone: Optional[str], run: Path) -> None:
    """Refuse ``--backbone`` naming another architecture than the one run ``run`` was trained on."""
    if backbone is None or "architecture" not in trained:
        return
    from vlprompt.backbones.loading import resolve_config

    if architecture_id(resolve_config(backbone)[0]) != trained["architecture"]:
        raise VLPromptError(
            f"--backbone {backbone} is not the architecture {run} was trained on ({trained['backbone']}); "
            "drop --backbone to use the run's own (another architecture's features do not fit its prompts)"
        )


@dataclass
class TrainedRun:
    """A finished training run's weights, sidecar and configuration, with the backbone to run it on."""

    path: Path
    meta: Dict
    tensors: Dict[str, torch.Tensor]
    config: RunConfig
    backbone: Any = field(repr=False)

    @property
    def trained_space(self) -> LabelSpace:
        return LabelSpace(**self.meta["label_space"])

    def task(self, space: Optional[LabelSpace] = None) -> PromptTask:
        """The trained task, switched to ``space`` (default: the trained label space)."""
        from vlprompt.engine.weights import WEIGHTS, load_into

        task = build_task(self.backbone, self.config, self.trained_space)
        load_into(task, self.tensors, self.path / WEIGHTS)
        if space is not None:
            task.set_label_space(space)
        return task.eval()


def open_trained(
    path: PathLike,
    *,
    backbone: Optional[str] = None,
    pretrained: Optional[str] = None,
    trust_pickle: bool = False,
    device: str = "auto",
    quick_gelu: Optional[bool] = None,
    precision: Optional[str] = None,
    batch_size: Optional[int] = None,
    quiet: bool = True,
) -> TrainedRun:
    """Load a trained run directory with its backbone (the run's own unless ``backbone``/``pretrained`` are given,
    with the activation it was trained with unless ``quick_gelu`` or another architecture is given);
    ``precision`` / ``batch_size`` override the run's evaluation settings."""
    from vlprompt.engine.precision import resolve_precision
    from vlprompt.engine.weights import WEIGHTS_META, load_weights

    path = Path(path)
    meta, tensors = load_weights(path)
    if "run_config" not in meta:
        raise VLPromptError(
            f"{path / WEIGHTS_META} was written by an older vlprompt (no run_config); train the run again"
        )
    cfg = RunConfig.from_dict(meta["run_config"])
    trained = meta["backbone"]
    _check_architecture(trained, backbone, path)
    source = trained["pretrained"]
    reason = None
    if quick_gelu is None and backbone is None and trained.get("quick_gelu") is not None:
        quick_gelu, reason = trained["quick_gelu"], f"as trained: {trained.get('activation_reason')}"
    spec = BackboneConfig(
        name=backbone or trained["backbone"],
        pretrained=pretrained if pretrained is not None else (None if source == "embedded" else source),
        trust_pickle=trust_pickle,
        device=device,
        quick_gelu=quick_gelu,
    )
    bb = load_backbone(spec, quick_gelu_reason=reason, quiet=quiet)
    cfg = dataclasses.replace(cfg, backbone=spec, train=dataclasses.replace(cfg.train))
    cfg.train.precision = resolve_precision(precision or cfg.train.precision, bb.device)
    if batch_size:
        cfg.train.test_batch_size = batch_size
    return TrainedRun(path, meta, tensors, cfg, bb)


@dataclass
class Prediction:
    """Logits ``[N, K]`` of N images over ``classnames``."""

    logits: torch.Tensor
    classnames: List[str]

    @property
    def labels(self) -> List[str]:
        """The top-1 class name of every image."""
        return [self.classnames[i] for i in self.logits.argmax(-1).tolist()]

    def topk(self, k: int = 5) -> List[List[tuple]]:
        """Per image, the ``k`` best ``(class name, softmax probability)`` pairs."""
        from vlprompt.engine.evaluation import top_k

        values, idx = top_k(self.logits.float().softmax(-1), k)
        return [[(self.classnames[i], float(v)) for v, i in zip(vs, ix)] for vs, ix in zip(values, idx.tolist())]


class LoadedRun:
    """A trained run ready to predict: ``.predict(images, classnames=...)`` on any label space the method supports,
    ``.tensors`` (the trained tensors), ``.config`` (the resolved :class:`~vlprompt.config.RunConfig`)."""

    def __init__(self, trained: TrainedRun):
        self._trained = trained
        self.path = trained.path
        self.config = trained.config
        self.tensors = trained.tensors
        self.backbone = trained.backbone
        self.classnames: List[str] = list(trained.trained_space.classnames)
        self._task = trained.task()

    def _space(self, classnames: Optional[Sequence[str]], template: Optional[str]) -> LabelSpace:
        trained = self._trained.trained_space
        if template is not None:
            check_template(template, "template")
        if classnames is None or list(classnames) == list(trained.classnames):
            return dataclasses.replace(trained, template=template or trained.template)
        tpl = template or trained.template
        return LabelSpace(list(classnames), template=tpl, kgcoop_template=tpl, ensemble_templates=[tpl], seen=False)

    def task_for(self, classnames: Optional[Sequence[str]] = None, template: Optional[str] = None) -> PromptTask:
        """The trained task on ``classnames`` (default: the trained classes; other names are an unseen space)."""
        space = self._space(classnames, template)
        if space != self._task.space:
            self._task.set_label_space(space)
        return self._task

    def images_to_tensor(self, images: Sequence[Union[str, Path, Any]]) -> torch.Tensor:
        """A batch from image paths or PIL images, with the backbone's test transform."""
        import torch
        from PIL import Image

        from vlprompt.data.images import read_image
        from vlprompt.data.transforms import backbone_transform

        transform = backbone_transform(self.backbone)
        return torch.stack([transform(i if isinstance(i, Image.Image) else read_image(i)) for i in images])

    def predict(
        self,
        images: Union[torch.Tensor, Sequence[Union[str, Path, Any]]],
        classnames: Optional[Sequence[str]] = None,
        template: Optional[str] = None,
        batch_size: int = 64,
    ) -> Prediction:
        """Logits of ``images`` (paths, PIL images, or a preprocessed ``[B, 3, H, W]`` tensor) over ``classnames``
        (default: the trained classes); other class names use the similarity head (label space unseen)."""
        import torch

        space = self.task_for(classnames, template).space
        batch = images if isinstance(images, torch.Tensor) else self.images_to_tensor(images)
        with torch.no_grad():
            logits = [
                self._task.predict(images=batch[s : s + batch_size].to(self.backbone.device)).float().cpu()
                for s in range(0, len(batch), batch_size)
            ]
        return Prediction(torch.cat(logits), list(space.classnames))


def load_run(
    path: PathLike,
    *,
    backbone: Optional[str] = None,
    pretrained: Optional[str] = None,
    trust_pickle: bool = False,
    device: str = "auto",
) -> LoadedRun:
    """A trained run directory (``vlprompt train`` or a converted reference checkpoint) ready to predict."""
    return LoadedRun(
        open_trained(path, backbone=backbone, pretrained=pretrained, trust_pickle=trust_pickle, device=device)
    )
