"""Published numbers to compare a sweep with (``vlprompt table --paper``), each with its source.

Accuracies in percent, transcribed from the original repositories' READMEs and result figures (the DePT
figures re-run the baselines with DePT's 10-epoch configs). Rows are datasets (or ``average``); columns are
``base`` / ``new`` / ``H`` (base-to-new), the number of shots (few-shot) or ``acc`` (cross-dataset, domain
generalisation). A table cell is compared only with an entry of the same protocol, method and backbone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from vlprompt.protocols import BENCHMARKS, XD_TARGETS

Rows = Dict[str, Dict[str, float]]


@dataclass(frozen=True)
class Published:
    protocol: str
    method: str
    backbone: str
    source: str
    rows: Rows


def _b2n(base: float, new: float, h: float) -> Dict[str, float]:
    return {"base": base, "new": new, "H": h}


def _b2n_table(per_dataset: str, average: str) -> Rows:
    """``"B/N/H B/N/H …"`` for the 11 benchmarks in table order, plus the average."""
    cells = [tuple(float(x) for x in c.split("/")) for c in per_dataset.split()]
    rows = {d: _b2n(*c) for d, c in zip(BENCHMARKS, cells)}
    rows["average"] = _b2n(*(float(x) for x in average.split("/")))
    return rows


def _acc(names, values: str) -> Rows:
    return {name: {"acc": float(v)} for name, v in zip(names, values.split())}


MAPLE_README = "MaPLe (Khattak et al., CVPR 2023) README, base-to-new table"
DEPT_B2N = "DePT (Zhang et al., CVPR 2024) README, base_to_new_performance.png"
DEPT_XD = "DePT (Zhang et al., CVPR 2024) README, cross_dataset_performance.png"
DEPT_DG = "DePT (Zhang et al., CVPR 2024) additional_results/domain_generalization.md"
NEMESIS_FEWSHOT = "Nemesis (Fu et al., ICLR 2024) README, few-shot figure (read off a line plot, +-0.2)"
NEMESIS_DG = "Nemesis (Fu et al., ICLR 2024) README, domain-generalisation figure"
VIT = "ViT-B-16"

B2N_AVERAGES = {
    "zeroshot": ((69.34, 74.22, 71.70), "MaPLe and PromptSRC (Khattak et al., CVPR 2023 / ICCV 2023) READMEs"),
    "coop": ((82.69, 63.22, 71.66), MAPLE_README + " (CoOp as in CoCoOp, Zhou et al., CVPR 2022)"),
    "cocoop": ((80.47, 71.69, 75.83), MAPLE_README + " (CoCoOp, Zhou et al., CVPR 2022)"),
    "kgcoop": ((80.73, 73.6, 77.0), "KgCoOp (Yao et al., CVPR 2023) README"),
    "vpt": ((80.24, 73.43, 76.68), MAPLE_README + " (deep vision prompting)"),
    "lpt": ((81.72, 73.81, 77.56), MAPLE_README + " (deep language prompting)"),
    "ivlp": ((82.15, 74.07, 77.90), MAPLE_README + " (IVLP 2+2 prompts, depth 12)"),
    "maple": ((82.28, 75.14, 78.55), MAPLE_README),
    "promptsrc": ((84.26, 76.10, 79.97), "PromptSRC (Khattak et al., ICCV 2023) README"),
}
DEPT_B2N_ROWS = {
    "coop+dept": (
        "77.13/70.10/73.45 98.33/94.33/96.29 94.70/97.63/96.14 79.67/72.40/75.86 98.20/72.00/83.08 90.43/91.33/90.88 "
        "42.53/22.53/29.46 82.37/75.07/78.55 83.20/56.13/67.04 88.27/66.27/75.70 85.43/72.17/78.24",
        "83.66/71.82/77.29",
    ),
    "cocoop+dept": (
        "76.87/70.47/73.53 98.37/93.87/96.06 94.03/97.20/95.59 79.87/73.33/76.46 98.33/72.57/83.51 90.30/91.30/90.80 "
        "43.07/31.30/36.25 82.20/76.73/79.37 82.77/55.40/66.37 90.27/66.87/76.82 85.70/72.80/78.73",
        "83.80/72.89/77.97",
    ),
    "kgcoop+dept": (
        "77.03/70.13/73.42 98.30/94.60/96.41 94.33/97.23/95.76 79.13/75.47/77.26 98.00/76.37/85.84 90.50/91.60/91.05 "
        "43.20/34.83/38.57 82.33/77.80/80.00 82.20/59.13/68.78 89.03/71.07/79.04 85.80/77.23/81.29",
        "83.62/75.04/79.10",
    ),
    "maple+dept": (
        "77.87/70.23/73.85 98.53/95.03/96.75 95.03/97.83/96.41 80.93/71.73/76.06 98.03/73.17/83.79 90.33/91.53/90.93 "
        "44.53/32.80/37.78 82.90/76.40/79.52 83.87/59.93/69.91 94.43/76.23/84.36 86.87/78.10/82.25",
        "84.85/74.82/79.52",
    ),
    "promptsrc+dept": (
        "78.20/70.27/74.02 98.57/94.10/96.28 95.43/97.33/96.37 80.80/75.00/77.79 98.40/77.10/86.46 90.87/91.57/91.22 "
        "45.70/36.73/40.73 83.27/78.97/81.06 84.80/61.20/71.09 93.23/77.90/84.88 87.73/77.70/82.46",
        "85.19/76.17/80.43",
    ),
}
#: ImageNet (source), average over the 10 targets, then the targets in table order
DEPT_XD_ROWS = {
    "coop": "71.80 64.40 93.97 89.60 64.60 69.13 85.47 20.70 65.70 43.07 44.50 67.23",
    "coop+dept": "72.63 65.02 93.30 90.00 65.53 70.50 85.97 21.90 66.07 43.17 44.97 68.80",
    "cocoop": "71.17 65.73 94.30 90.80 65.53 71.80 86.13 22.83 67.73 45.57 43.47 69.10",
    "cocoop+dept": "72.77 65.88 94.10 90.63 66.23 72.17 86.27 22.90 67.30 45.50 44.17 69.53",
    "kgcoop": "71.17 65.06 94.17 89.70 64.77 70.30 86.47 22.43 66.83 44.43 43.53 68.00",
    "kgcoop+dept": "72.77 65.55 94.23 90.03 65.57 70.57 86.37 23.27 66.67 45.97 43.53 69.30",
    "maple": "72.47 64.17 92.97 90.20 63.97 70.03 84.83 23.23 66.00 43.23 40.03 67.23",
    "maple+dept": "73.27 64.56 92.53 90.10 64.60 70.10 85.57 23.63 66.40 45.03 40.13 67.53",
    "promptsrc": "71.33 65.71 93.77 90.40 65.77 70.80 86.30 23.67 66.93 46.07 44.23 69.20",
    "promptsrc+dept": "71.60 66.02 93.80 90.13 66.00 70.93 86.27 24.30 67.23 46.60 45.83 69.10",
}
#: ImageNet, -V2, -Sketch, -A, -R (the DePT figure lists R before A; reordered here)
DG_ORDER = ("imagenet", "imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
DEPT_DG_ROWS = {
    "coop": "70.53 64.13 49.13 51.43 77.20",
    "coop+dept": "70.70 64.13 49.40 51.57 77.33",
    "cocoop": "70.70 63.93 48.93 50.87 76.97",
    "cocoop+dept": "70.57 63.97 49.83 50.90 76.87",
    "kgcoop": "70.33 63.47 48.77 50.53 76.73",
    "kgcoop+dept": "70.63 63.70 48.90 50.77 76.57",
    "maple": "70.87 63.87 49.00 49.03 77.03",
    "maple+dept": "70.97 64.33 49.33 49.70 77.37",
}
#: CoOp-based, RN50, 16 shots; +Nemesis = the position-uniform loss with omega = 1
NEMESIS_DG_ROWS = {
    "coop": "62.70 55.04 32.64 22.44 54.60",
    "coop+nemesis": "62.96 55.48 33.64 22.96 55.72",
}
NEMESIS_FEWSHOT_ROWS = {"coop": "59.3 62.2 66.3 69.8 73.2", "coop+nemesis": "59.8 64.0 67.9 71.1 74.0"}


def _published() -> List[Published]:
    out = [Published("b2n", m, VIT, src, {"average": _b2n(*v)}) for m, (v, src) in B2N_AVERAGES.items()]
    out += [Published("b2n", m, VIT, DEPT_B2N, _b2n_table(*rows)) for m, rows in DEPT_B2N_ROWS.items()]
    out += [
        Published("xd", m, VIT, DEPT_XD, _acc(("imagenet", "average", *XD_TARGETS), v)) for m, v in DEPT_XD_ROWS.items()
    ]
    out += [Published("dg", m, VIT, DEPT_DG, _acc(DG_ORDER, v)) for m, v in DEPT_DG_ROWS.items()]
    out += [Published("dg", m, "RN50", NEMESIS_DG, _acc(DG_ORDER, v)) for m, v in NEMESIS_DG_ROWS.items()]
    out += [
        Published(
            "fewshot",
            m,
            "RN50",
            NEMESIS_FEWSHOT,
            {"average": dict(zip(("1", "2", "4", "8", "16"), map(float, v.split())))},
        )
        for m, v in NEMESIS_FEWSHOT_ROWS.items()
    ]
    return out


PUBLISHED: List[Published] = _published()


def _norm(backbone: Optional[str]) -> str:
    return re.sub(r"[^a-z0-9]", "", (backbone or "").lower())


def lookup(protocol: str, method: str, backbone: Optional[str]) -> Optional[Published]:
    """The published entry for ``method`` under ``protocol`` on ``backbone`` (``ViT-B-16`` = ``ViT-B/16``)."""
    for entry in PUBLISHED:
        if entry.protocol == protocol and entry.method == method and _norm(entry.backbone) == _norm(backbone):
            return entry
    return None
