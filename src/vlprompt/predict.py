"""A trained run on your own images: the images of paths and folders, batched predictions over any label space the
method supports (:meth:`vlprompt.pipeline.trained.LoadedRun.predict`), and their rendering as a table, JSON or CSV.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from vlprompt.data.layout import IMAGE_EXTENSIONS
from vlprompt.errors import VLPromptError

FORMATS = ("table", "json", "csv")
PathLike = Union[str, Path]


def collect_images(inputs: Sequence[PathLike]) -> List[Path]:
    """Image files of ``inputs``, in order: a file as it is, a folder's images recursively (sorted, hidden files
    and folders skipped)."""
    images: List[Path] = []
    for entry in map(Path, inputs):
        if entry.is_file():
            images.append(entry)
        elif entry.is_dir():
            found = folder_images(entry)
            if not found:
                raise VLPromptError(f"{entry} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            images.extend(found)
        else:
            raise VLPromptError(f"{entry} not found; give image files or folders of images")
    if not images:
        raise VLPromptError("no images given; pass image files or folders")
    return images


def folder_images(folder: Path) -> List[Path]:
    found: List[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [
            Path(root) / n for n in sorted(files) if not n.startswith(".") and n.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return found


def parse_classnames(value: Optional[str]) -> Optional[List[str]]:
    """``--classnames`` of ``vlprompt predict`` / ``export``: a class-names file (its names, in file order) or
    ``a,b,c``; two classes of one name are refused, as in training."""
    from vlprompt.data.overrides import label_names, require_distinct

    if value is None:
        return None
    if Path(value).is_file():
        names = label_names(value)
        if len(names) < 2:
            raise VLPromptError(f"--classnames {value} lists {len(names)} class; give 2+ class names")
        return require_distinct(names, f"--classnames {value}")
    names = [n.strip() for n in value.split(",") if n.strip()]
    if len(names) < 2:
        raise VLPromptError(f"--classnames {value!r} is neither a file nor a comma-separated list of 2+ class names")
    return require_distinct(names, f"--classnames {value}")


def label_space_args(args) -> Tuple[Optional[List[str]], Optional[str]]:
    """``(class names, template)`` of ``predict`` / ``export``'s ``--classnames`` and ``--template``, checked as
    ``train`` checks them, before the run is loaded."""
    from vlprompt.config import check_template

    template = None if args.template is None else check_template(args.template, "--template")
    return parse_classnames(args.classnames), template


def predict_images(
    model, images: Sequence[PathLike], classnames=None, template=None, batch_size: int = 64, show_progress=True
) -> torch.Tensor:
    """Logits ``[N, K]`` of ``model`` (a :class:`~vlprompt.pipeline.trained.LoadedRun`) on image files, batch by batch."""
    from vlprompt.progress import progress

    logits = []
    with progress(total=len(images), desc="predicting", unit="img", enabled=show_progress) as bar:
        for start in range(0, len(images), batch_size):
            batch = list(images[start : start + batch_size])
            logits.append(model.predict(batch, classnames=classnames, template=template).logits)
            bar.update(len(batch))
    return torch.cat(logits)


def prediction_rows(
    images: Sequence[PathLike], logits: torch.Tensor, classnames: Sequence[str], topk: int
) -> List[Dict]:
    """Per image: ``image``, ``prediction``, ``probability`` (softmax) and the ``topk`` best (class, probability)."""
    from vlprompt.engine.evaluation import top_k

    values, index = top_k(logits.float().softmax(-1), topk)
    return [
        {
            "image": str(image),
            "prediction": classnames[int(ix[0])],
            "probability": round(float(vs[0]), 6),
            "topk": [{"class": classnames[int(i)], "probability": round(float(v), 6)} for v, i in zip(vs, ix)],
        }
        for image, vs, ix in zip(images, values, index)
    ]


def render(rows: List[Dict], fmt: str) -> str:
    """``table`` (aligned columns), ``json`` (a list of objects) or ``csv`` (``image,prediction,probability,top1,
    prob1,...``)."""
    if fmt == "json":
        return json.dumps(rows, indent=1)
    k = max(len(r["topk"]) for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(
            ["image", "prediction", "probability"] + [f"{c}{j}" for j in range(1, k + 1) for c in ("top", "prob")]
        )
        for r in rows:
            writer.writerow(
                [r["image"], r["prediction"], r["probability"]]
                + [x for t in r["topk"] for x in (t["class"], t["probability"])]
            )
        return buf.getvalue().rstrip("\n")
    if fmt != "table":
        raise VLPromptError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    table = [["image", "prediction", "probability"] + (["top-k"] if k > 1 else [])]
    for r in rows:
        others = ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["topk"])
        table.append([r["image"], r["prediction"], f"{r['probability']:.3f}"] + ([others] if k > 1 else []))
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]) - 1)]
    return "\n".join("  ".join([*(v.ljust(w) for v, w in zip(row, widths)), row[-1]]) for row in table)
