"""``vlprompt list``: methods, add-ons, datasets, backbones and sweep recipes known to this install."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Dict, List


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list methods, add-ons, datasets, backbones and sweep recipes")
    p.add_argument(
        "what", nargs="?", choices=["methods", "addons", "datasets", "backbones", "recipes"], help="only this section"
    )
    p.set_defaults(func=run)


def open_clip_configs() -> Dict[str, dict]:
    """open_clip's model configs by name (its ``model_configs/*.json``, in its natural order), read without
    importing it."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(next(iter(spec.submodule_search_locations))) / "model_configs"
    paths = sorted(
        folder.glob("*.json"), key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.stem.lower())]
    )
    configs = {}
    for path in paths:
        try:
            configs[path.stem] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return configs


def open_clip_models() -> list:
    """open_clip's model names, in its natural order."""
    return list(open_clip_configs())


def backbone_lines() -> List[str]:
    """``name  (family: what it is)`` for toy and every open_clip model (:mod:`vlprompt.backbone_families`)."""
    from vlprompt.backbone_families import FAMILIES, family

    configs = open_clip_configs()
    width = max((len(n) for n in configs), default=4)
    lines = [f"{'toy':<{width}}  (clip: embedded, offline)"]
    for name, config in configs.items():
        kind = family(config)
        lines.append(f"{name:<{width}}  ({kind}: {FAMILIES[kind]})")
    return lines + ["<path/to/open_clip_config.json> | <Hugging Face CLIPModel folder>"]


def sections() -> dict:
    """Every section's lines; reads the registries' declarations only (no model library is imported)."""
    from vlprompt.data.base import DATASETS
    from vlprompt.registry import ADDONS, LEARNERS
    from vlprompt.sweep.recipes import describe, recipes
    from vlprompt.task.composition import aliases

    known = aliases()
    methods = sorted(set(LEARNERS.names()) | set(known))
    return {
        "methods": [f"{m}  (= {known[m][0]}+{'+'.join(known[m][1])})" if m in known else m for m in methods],
        "addons": ADDONS.names(),
        "datasets": DATASETS.names(),
        "backbones": backbone_lines(),
        "recipes": [describe(r) for r in recipes().values()],
    }


def run(args) -> int:
    for name, items in sections().items():
        if args.what and name != args.what:
            continue
        print(f"{name}:")
        for item in items:
            print(f"  {item}")
    return 0
