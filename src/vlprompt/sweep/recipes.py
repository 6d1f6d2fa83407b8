"""Named sweeps that reproduce each paper's experiments with its published settings (``--recipe NAME``).

A recipe fills the protocol, methods, datasets, seeds, shots and backbone of ``vlprompt sweep``; explicit flags
override it. Every method setting — per protocol and per dataset (ImageNet's 50 CoOp epochs, RESTORE's
calibration ratios, Nemesis' Food101/OxfordPets values, PromptSRC's few-shot GPA, ...) — comes from the published
presets next to each component (``vlprompt presets METHOD --protocol P --dataset D`` shows them), so a recipe is
only the paper's choice of protocol, methods, backbone, seeds and shots, declared by the paper's component.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

from vlprompt.components import SEEDS, Recipe
from vlprompt.errors import VLPromptError
from vlprompt.protocols import PROTOCOLS, get_protocol, resolve_names
from vlprompt.registry import declared
from vlprompt.sweep.jobs import SweepSpec, normalize_method


def recipes() -> Dict[str, Recipe]:
    """Every registered component's recipes (``recipes`` in its ``config.py``, :mod:`vlprompt.components`), by
    name."""
    found = [r for declared_recipes in declared("recipes") for r in declared_recipes]
    return {r.name: r for r in sorted(found, key=lambda r: r.name)}


def get_recipe(name: str) -> Recipe:
    known = recipes()
    if name not in known:
        raise VLPromptError(f"unknown --recipe {name!r}; see `vlprompt list recipes`: {', '.join(known)}")
    return known[name]


def describe(recipe: Recipe) -> str:
    backbone = f"{recipe.backbone[0]} ({recipe.backbone[1]})"
    text = f"{recipe.name}  {recipe.paper}: {recipe.protocol}, {' '.join(recipe.methods)}, {backbone}"
    return f"{text}; {recipe.note}" if recipe.note else text


def build_spec(
    root: Path,
    recipe: Optional[str] = None,
    protocol: Optional[str] = None,
    methods: Optional[Sequence[str]] = None,
    datasets: Optional[Sequence[str]] = None,
    targets: Optional[Sequence[str]] = None,
    seeds: Optional[Sequence[int]] = None,
    shots: Optional[Sequence[int]] = None,
    backbone: Optional[str] = None,
    pretrained: Optional[str] = None,
    sets: Sequence[str] = (),
    data_root: Optional[str] = None,
    num_workers: int = 0,
    job_args: Sequence[str] = (),
    templates: Optional[str] = None,
) -> SweepSpec:
    """A sweep from explicit values, falling back to the recipe's, then to the protocol's defaults.
    ``sets`` (``--set``) apply to every training run, ``job_args`` to every job, ``templates`` (``--templates``)
    to the zero-shot runs."""
    r = get_recipe(recipe) if recipe else None
    protocol = protocol or (r.protocol if r else None)
    if not protocol:
        raise VLPromptError(f"--protocol is required ({', '.join(PROTOCOLS)}), or a --recipe (vlprompt list recipes)")
    proto = get_protocol(protocol)
    methods = methods or (r.methods if r else None)
    if not methods:
        raise VLPromptError("--methods is required, e.g. --methods coop kgcoop+dept (or a --recipe)")
    model, weights = r.backbone if r else (None, None)
    return SweepSpec(
        protocol=protocol,
        methods=tuple(dict.fromkeys(normalize_method(m) for m in methods)),
        datasets=resolve_names(proto, datasets, "datasets"),
        targets=resolve_names(proto, targets, "targets"),
        seeds=tuple(dict.fromkeys(seeds or (r.seeds if r else SEEDS))),
        shots=tuple(dict.fromkeys(shots or (r.shots if r and r.shots else proto.shots))),
        root=Path(root).absolute(),  # argv and configs hold absolute paths: the sweep resumes from any folder
        data_root=str(Path(data_root).expanduser().absolute()) if data_root else None,
        backbone=backbone or model,
        pretrained=pretrained or weights,
        sets=tuple(sets),
        num_workers=num_workers,
        job_args=tuple(job_args),
        templates=templates,
    )
