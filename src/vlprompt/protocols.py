"""The four evaluation protocols as objects in one registry (:data:`PROTOCOLS`, torch-free): what a run trains on,
where it is evaluated, default shots, the published settings its runs use, and how its targets are given.

* few-shot (CoOp, Zhou et al., IJCV 2022): train on all classes with K in {1, 2, 4, 8, 16} shots, test on the
  full test set;
* base-to-new (CoCoOp, Zhou et al., CVPR 2022): train on the base half of the classes (16 shots); the base
  accuracy is the training run's own test result, the new accuracy an evaluation of that run on the new half;
* cross-dataset (CoCoOp): train on ImageNet (all classes, 16 shots), evaluate on 10 other datasets;
* domain generalisation (CoCoOp): the same ImageNet runs evaluated on ImageNet-V2, -Sketch, -A and -R.

Every protocol also names a toy analogue of its datasets (the offline toy world): ``--datasets toy`` /
``--targets toy``. The command line's ``--protocol`` choices, the presets' protocol names
(:mod:`vlprompt.presets`), sweep planning (:mod:`vlprompt.sweep`) and the result tables (:mod:`vlprompt.results`)
all read this registry; what differs between protocols is declared on each :class:`Protocol`, not tested by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from vlprompt.errors import VLPromptError

#: the 11 benchmarks in the order of the published tables (DePT's result CSVs)
BENCHMARKS: Tuple[str, ...] = (
    "imagenet",
    "caltech101",
    "oxford_pets",
    "stanford_cars",
    "oxford_flowers",
    "food101",
    "fgvc_aircraft",
    "sun397",
    "dtd",
    "eurosat",
    "ucf101",
)
XD_TARGETS: Tuple[str, ...] = BENCHMARKS[1:]
DG_TARGETS: Tuple[str, ...] = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
FEWSHOT_SHOTS: Tuple[int, ...] = (1, 2, 4, 8, 16)
#: table layouts (:mod:`vlprompt.results`): a column per shot count (and the few-shot curves), Base / New / H (and
#: the base-to-new bars), or the source and every target (the transfer tables)
SHOTS, BASE_NEW, TRANSFER = "shots", "base_new", "transfer"


@dataclass(frozen=True)
class Protocol:
    name: str
    folder: str  # run folder (see vlprompt.sweep.layout); xd and dg share their source runs
    title: str
    subsample: str  # label space of the training runs: all | base
    datasets: Tuple[str, ...]  # default training datasets (the source, for xd / dg)
    targets: Tuple[str, ...]  # default evaluation targets of each training run ("new" = its new classes)
    shots: Tuple[int, ...]
    layout: str  # SHOTS | BASE_NEW | TRANSFER
    toy_datasets: Tuple[str, ...]
    toy_targets: Tuple[str, ...]
    #: the published settings (:mod:`vlprompt.presets`) its training runs use: dg evaluates the xd source runs
    preset: str = ""
    #: why ``--targets`` cannot differ from :attr:`targets` (None: any datasets may be given)
    fixed_targets: Optional[str] = None
    #: zero-shot CLIP runs once, at 0 shots, instead of once per shot count (the few-shot curves start there)
    zeroshot_at_zero_shots: bool = False

    def __post_init__(self):
        if not self.preset:
            object.__setattr__(self, "preset", self.name)


PROTOCOLS: Dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "fewshot", "fewshot", "few-shot", "all", BENCHMARKS, (), FEWSHOT_SHOTS, SHOTS, ("toy-b2n",), (),
            fixed_targets="the few-shot protocol has no evaluation targets", zeroshot_at_zero_shots=True,
        ),
        Protocol(
            "b2n", "b2n", "base-to-new", "base", BENCHMARKS, ("new",), (16,), BASE_NEW, ("toy-b2n",), ("new",),
            fixed_targets="base-to-new evaluates each run on its own new classes",
        ),
        Protocol("xd", "xd", "cross-dataset", "all", ("imagenet",), XD_TARGETS, (16,), TRANSFER, ("toy-b2n",), ("toy-xd",)),
        Protocol(
            "dg", "xd", "domain generalisation", "all", ("imagenet",), DG_TARGETS, (16,), TRANSFER, ("toy-b2n",),
            ("toy-shift",),
            preset="xd",
        ),
    )
}  # fmt: skip


def register_protocol(protocol: Protocol) -> Protocol:
    """Add ``protocol`` to the registry (``--protocol`` of train / sweep / table / presets / convert, sweep planning and
    the tables read it); its ``folder`` is its own or the one whose training runs it shares."""
    if protocol.name in PROTOCOLS:
        raise ValueError(f"protocol {protocol.name!r} is registered twice")
    if protocol.layout not in (SHOTS, BASE_NEW, TRANSFER):
        raise ValueError(f"protocol {protocol.name!r}: unknown layout {protocol.layout!r}")
    PROTOCOLS[protocol.name] = protocol
    return protocol


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise VLPromptError(f"unknown --protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def resolve_names(protocol: Protocol, requested: Optional[Sequence[str]], which: str) -> Tuple[str, ...]:
    """``--datasets`` / ``--targets``: None or ``all`` = the protocol's list, ``toy`` = its toy analogue."""
    default, toy = (
        (protocol.datasets, protocol.toy_datasets) if which == "datasets" else (protocol.targets, protocol.toy_targets)
    )
    if not requested or list(requested) == ["all"]:
        return default
    if list(requested) == ["toy"]:
        return toy
    if which == "targets" and protocol.fixed_targets and tuple(requested) != protocol.targets:
        raise VLPromptError(f"--targets: {protocol.fixed_targets}; leave --targets out")
    return tuple(dict.fromkeys(requested))


def target_protocol(folder: str, target: str) -> str:
    """The protocol whose table an evaluation ``target`` of a source run in ``folder`` belongs to: the one sharing the
    folder that declares the target (ImageNet-V2, -Sketch, -A, -R: domain generalisation), else the folder's own
    (cross-dataset)."""
    sharing = [p for p in PROTOCOLS.values() if p.folder == folder]
    declared = next((p for p in sharing if p.name != folder and target in (*p.targets, *p.toy_targets)), None)
    return declared.name if declared is not None else folder
