"""Loading a run's inputs: its dataset (checked before any work) and its frozen backbone."""

from __future__ import annotations

from typing import Optional

from vlprompt.config import BackboneConfig, DataConfig


def load_data(data: DataConfig, *, need_train: bool = False):
    """The (few-shot, subsampled) dataset of ``data``, checked before any work (empty splits, a single class,
    classes without training images, missing image files unless ``skip_corrupt``: one-line errors)."""
    from vlprompt.data import build_dataset
    from vlprompt.data.verify import check_usable

    dataset = build_dataset(
        data.dataset, data.data_root, shots=data.shots, seed=data.seed, subsample=data.subsample,
        split_file=data.split_file, template=data.template, templates_file=data.templates_file,
        classnames_file=data.classnames_file,
    )  # fmt: skip
    where = f"--dataset {data.dataset}" + (f" --subsample {data.subsample}" if data.subsample != "all" else "")
    check_usable(dataset, where, ("test", "train") if need_train else ("test",), check_files=not data.skip_corrupt)
    return dataset


def load_backbone(backbone: BackboneConfig, quick_gelu_reason: Optional[str] = None, quiet: bool = True):
    """The frozen backbone of ``backbone``; its name, weights and activation are printed unless ``quiet``."""
    from vlprompt.backbones import load_backbone as load

    bb = load(
        backbone.name,
        backbone.pretrained,
        trust_pickle=backbone.trust_pickle,
        device=backbone.device,
        quick_gelu=backbone.quick_gelu,
        quick_gelu_reason=quick_gelu_reason,
    )
    if not quiet:
        print(backbone_line(bb))
    return bb


def backbone_line(backbone) -> str:
    """``backbone: NAME (WEIGHTS), activation: QuickGELU (REASON)`` — printed at load, logged in the run."""
    from vlprompt.backbones.loading import activation_name

    spec = backbone.spec
    activation = f"{activation_name(spec.quick_gelu)} ({spec.activation_reason})"
    return f"backbone: {spec.backbone} ({spec.pretrained}), activation: {activation}"
