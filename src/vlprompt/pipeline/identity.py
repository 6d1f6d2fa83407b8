"""Run identity: what a run computes (the marker of its run directory) and the fingerprints of its inputs.

A run directory is reused only for the same identity (:meth:`~vlprompt.engine.rundir.RunDir.check`); the
fingerprints (split items, class names, backbone weights) tell a resumed run that its inputs did not change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Optional

from vlprompt.config import BackboneConfig, DataConfig, RunConfig, to_dict


def resolve_path(value: Optional[str]) -> Optional[str]:
    """An absolute, normalised path for a user path (relative, absolute or with a trailing slash alike)."""
    return None if value is None else str(Path(value).expanduser().resolve())


def local_path(value: Optional[str]) -> Optional[str]:
    """Resolve ``value`` when it names an existing local file or folder (model names and tags stay as they are)."""
    if value is not None and Path(value).expanduser().exists():
        return resolve_path(value)
    return value


#: data settings that change what a run computes only when set (absent from the identity otherwise, so runs
#: written before they existed keep their identity)
PROMPT_SETTINGS = ("template", "templates_file", "classnames_file")


def data_identity(data: DataConfig) -> Dict[str, Any]:
    d = to_dict(data)
    d.pop("num_workers")
    for key in ("data_root", "split_file", "templates_file", "classnames_file"):
        d[key] = resolve_path(d[key])
    for key in PROMPT_SETTINGS:
        if d[key] is None:
            d.pop(key)
    return d


def backbone_identity(backbone: BackboneConfig) -> Dict[str, Any]:
    return {
        "name": local_path(backbone.name),
        "pretrained": local_path(backbone.pretrained),
        "quick_gelu": backbone.quick_gelu,
    }


def run_identity(cfg: RunConfig) -> Dict[str, Any]:
    """What a training run computes: everything but where it is written, the provenance notes and settings that
    do not change the numbers (workers, device); ``--init-from`` by its path and content."""
    from vlprompt.engine.rundir import WEIGHTS
    from vlprompt.fileio import content_sha256

    return {
        "method": cfg.method,
        "data": data_identity(cfg.data),
        "backbone": backbone_identity(cfg.backbone),
        "train": to_dict(cfg.train),
        "components": {name: to_dict(c) for name, c in cfg.components.items()},
        "init_from": resolve_path(cfg.init_from),
        **({"init_from_sha256": content_sha256(cfg.init_from, (WEIGHTS,))} if cfg.init_from else {}),
    }


def architecture_id(config: Dict[str, Any]) -> str:
    """A hash of an open_clip model config, activation excluded: equal for every spelling of one architecture
    (a model name, its ``-quickgelu`` variant, a copy of its config JSON)."""
    arch = {k: v for k, v in config.items() if k != "quick_gelu"}
    return hashlib.sha1(json.dumps(arch, sort_keys=True, default=str).encode()).hexdigest()[:12]


def data_fingerprint(dataset) -> str:
    """A hash of the split items (paths and labels) and class names a run uses."""
    h = hashlib.sha1()
    for split in ("train", "val", "test"):
        for d in dataset.split(split):
            h.update(f"{split}\t{d.relpath}\t{d.label}\n".encode())
    h.update("\n".join(dataset.classnames).encode())
    if dataset.templates is not None:  # a user's ensemble file: its content, not only its path
        h.update("\n".join(dataset.templates).encode())
    return h.hexdigest()[:16]
