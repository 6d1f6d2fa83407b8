"""``vlprompt list``: methods, add-ons, datasets, backbones and sweep recipes known to this install."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list methods, add-ons, datasets, backbones and sweep recipes")
    p.add_argument(
        "what", nargs="?", choices=["methods", "addons", "datasets", "backbones", "recipes"], help="only this section"
    )
    p.set_defaults(func=run)


def open_clip_models() -> list:
    """open_clip's model names (its ``model_configs/*.json``, in its natural order), found without importing it."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "model_configs"
    names = [p.stem for p in folder.glob("*.json")]
    return sorted(names, key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s.lower())])


def sections() -> dict:
    """Every section's lines; reads the registries' declarations only (no model library is imported)."""
    from vlprompt.data.base import DATASETS
    from vlprompt.registry import ADDONS, LEARNERS
    from vlprompt.sweep.recipes import RECIPES, describe
    from vlprompt.task.composition import ALIASES

    methods = sorted(set(LEARNERS.names()) | set(ALIASES))
    return {
        "methods": [f"{m}  (= {ALIASES[m][0]}+{'+'.join(ALIASES[m][1])})" if m in ALIASES else m for m in methods],
        "addons": ADDONS.names(),
        "datasets": DATASETS.names(),
        "backbones": ["toy  (embedded, offline)"]
        + [m for m in open_clip_models() if m.startswith(("ViT", "RN", "convnext", "EVA", "ViTamin"))]
        + ["<path/to/open_clip_config.json>"],
        "recipes": [describe(r) for r in RECIPES.values()],
    }


def run(args) -> int:
    for name, items in sections().items():
        if args.what and name != args.what:
            continue
        print(f"{name}:")
        for item in items:
            print(f"  {item}")
    return 0
