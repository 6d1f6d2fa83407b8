"""Your own prompts for any dataset, without code: a template (``--template``), a template ensemble
(``--templates FILE``) and class names (``--classnames FILE``).

* A template replaces the dataset's hand-crafted one (CoOp's and KgCoOp's alike) wherever a method uses it.
* A templates file — ``.json``: a list of templates; otherwise one template per line (blank lines and lines starting
  with ``#`` skipped) — replaces the zero-shot ensemble (CoOp's 7 templates + the dataset's).
* A class-names file gives the prompt name of every class: ``.json`` an object ``{raw or folder name: class name}``
  or a list of names in label order; otherwise one class per line, either ``RAW: NAME`` lines (a map) or bare
  names in label order (one form per file). A map's keys are the class folders / split-file names, or the
  dataset's own class names; every class needs an entry and every key must name a class.

Every template holds exactly one ``{}``; a bad file is a one-line error naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Union

from vlprompt.config import check_template
from vlprompt.data.base import DatasetSplits
from vlprompt.errors import VLPromptError

MAP_SEPARATOR = ": "


def _lines(path: Path) -> List[str]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not a name
    except FileNotFoundError:
        raise VLPromptError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VLPromptError(f"cannot read {path}: {exc}") from None
    return text.splitlines()


def _json(path: Path):
    try:
        return json.loads("\n".join(_lines(path)))
    except ValueError as exc:
        raise VLPromptError(f"{path} is not valid JSON ({exc}); fix the file") from None


def read_templates(path: Union[str, Path]) -> List[str]:
    """The templates of a ``--templates`` file (see the module doc), each checked."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = _json(path)
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise VLPromptError(f'{path} must hold a JSON list of template strings, e.g. ["a photo of a {{}}."]')
        entries = [(f"{path} entry {i + 1}", t) for i, t in enumerate(data)]
    else:
        entries = [
            (f"{path} line {i + 1}", line.strip())
            for i, line in enumerate(_lines(path))
            if line.strip() and not line.strip().startswith("#")
        ]
    if not entries:
        raise VLPromptError(f"{path} holds no templates; give one per line, each with one {{}}")
    return [check_template(t, where) for where, t in entries]


def read_classnames(path: Union[str, Path]) -> Union[List[str], Dict[str, str]]:
    """A ``--classnames`` file: a list of names (label order) or a map raw name -> name (see the module doc)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        data = _json(path)
        ok = (isinstance(data, list) and all(isinstance(n, str) for n in data)) or (
            isinstance(data, dict) and all(isinstance(n, str) for n in data.values())
        )
        if not ok:
            raise VLPromptError(f"{path} must hold a JSON object {{folder name: class name}} or a list of class names")
        names = data
    else:
        lines = [line.strip() for line in _lines(path) if line.strip() and not line.strip().startswith("#")]
        mapped = [MAP_SEPARATOR in line for line in lines]
        if any(mapped) and not all(mapped):
            bad = lines[mapped.index(False) if mapped[0] else mapped.index(True)]
            raise VLPromptError(
                f"{path} mixes 'RAW: NAME' lines and bare names (e.g. {bad!r}); use one form, or JSON for names with ': '"
            )
        names = dict(line.split(MAP_SEPARATOR, 1) for line in lines) if any(mapped) else lines
    values = list(names.values()) if isinstance(names, dict) else names
    if not values:
        raise VLPromptError(f"{path} holds no class names")
    empty = [v for v in values if not v.strip()]
    if empty:
        raise VLPromptError(f"{path} has an empty class name; give every class a name")
    return {k.strip(): v.strip() for k, v in names.items()} if isinstance(names, dict) else [v.strip() for v in names]


def label_names(path: Union[str, Path]) -> List[str]:
    """The class names a ``--classnames`` file lists, in file order (a label space for prediction)."""
    names = read_classnames(path)
    return list(names.values()) if isinstance(names, dict) else names


def _raw_names(dataset: DatasetSplits) -> List[str]:
    """The raw (folder / split-file) name of every label; a label without items keeps its prompt name."""
    raw = list(dataset.classnames)
    for split in ("train", "val", "test"):
        for d in dataset.split(split):
            raw[d.label] = d.classname
    return raw


def rename_classes(dataset: DatasetSplits, path: Union[str, Path]) -> List[str]:
    """The class names of ``dataset`` after a ``--classnames`` file (see the module doc)."""
    names = read_classnames(path)
    where = f"--classnames {path}"
    if isinstance(names, list):
        if len(names) != dataset.num_classes:
            raise VLPromptError(
                f"{where} lists {len(names)} names but --dataset {dataset.name} has {dataset.num_classes} classes; "
                "give one name per class in label order (or a map)"
            )
        renamed = names
    else:
        raw = _raw_names(dataset)
        known = set(raw) | set(dataset.classnames)
        unknown = [k for k in names if k not in known]
        if unknown:
            shown = ", ".join(raw[:5]) + (", ..." if len(raw) > 5 else "")
            raise VLPromptError(
                f"{where}: {unknown[0]!r} is not a class of --dataset {dataset.name} (its classes: {shown})"
            )
        renamed = []
        for label, (r, current) in enumerate(zip(raw, dataset.classnames)):
            if r not in names and current not in names:
                raise VLPromptError(f"{where} has no entry for class {r!r} (label {label}); give every class a name")
            renamed.append(names[r] if r in names else names[current])
    return require_distinct(renamed, where)


def require_distinct(names: List[str], where: str) -> List[str]:
    """``names``, unless two classes share a name (their prompts, and so their logits, would be equal)."""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise VLPromptError(f"{where} gives two classes the name {twice[0]!r}; class names must differ")
    return names


def apply_overrides(
    dataset: DatasetSplits,
    template: Optional[str] = None,
    templates_file: Optional[Union[str, Path]] = None,
    classnames_file: Optional[Union[str, Path]] = None,
) -> DatasetSplits:
    """``dataset`` with the user's template, template ensemble and class names (each optional)."""
    changes: Dict[str, object] = {}
    if template is not None:
        changes["template"] = changes["kgcoop_template"] = check_template(template, "--template")
    if templates_file is not None:
        changes["templates"] = read_templates(templates_file)
    if classnames_file is not None:
        changes["classnames"] = rename_classes(dataset, classnames_file)
    return dataset.with_items(**changes) if changes else dataset
