"""What a component declares, next to it: the facts a learner or an add-on package states besides its code.

Every built-in component is one package, ``vlprompt/methods/<name>/`` or ``vlprompt/addons/<name>/`` (as peft keeps
``tuners/<method>/``): ``config.py`` holds its *declaration* — torch-free, imported by the registries on first use —
and ``model.py`` its implementation (``nn.Module``), imported when a model is built. A declaration is the
component's config dataclass (a :class:`Declaration`), whose class attributes carry its facts:

* ``presets`` / ``dataset_rules`` — the settings its paper or repository publishes (:mod:`vlprompt.presets`);
* ``published`` — :class:`Published` tables: the accuracies its paper or repository publishes, its own and its
  baselines' (``vlprompt table --paper``), each with its source;
* ``recipes`` — :class:`Recipe` s: its paper's sweeps (``vlprompt sweep --recipe``, ``vlprompt list recipes``);
* ``checkpoint_settings`` — :class:`ShapeSetting` s: the learner's settings a converted checkpoint fixes through
  its tensors' shapes (CoOp's ``n_ctx``, MaPLe's ``depth``); ``checkpoint_word_init`` — whether a converted
  checkpoint's ``ctx_init`` must then have exactly ``n_ctx`` words (CoOp, CoCoOp);
* ``aliases`` — ``{name: (learner, add-ons)}``: method names that expand to a composition (``kgcoop`` =
  ``coop+kg``, declared by KgCoOp's ``kg``);
* ``reference`` — ``{method: Trainer}``: the reference trainers whose checkpoints hold this composition's tensors
  (the last component of the method declares it: ``coop+dept`` is DePT's), as :class:`Rule` tables for
  ``vlprompt convert`` / ``--init-from`` (:mod:`vlprompt.convert.keymap`).

Generic code reads them through :func:`vlprompt.registry.declared`, which takes each class's *own* attribute (a
subclass such as CoCoOp's config does not inherit CoOp's published numbers). Nothing here imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from vlprompt.protocols import BENCHMARKS, FEWSHOT_SHOTS

#: row (a dataset or ``average``) -> column -> accuracy
Rows = Dict[str, Dict[str, float]]
VIT_B16 = ("ViT-B-16", "openai")
RN50 = ("RN50", "openai")
SEEDS = (1, 2, 3)


class Declaration:
    """Base of every learner's and add-on's config dataclass: the class attributes of the module doc (none of
    them dataclass fields)."""

    presets = {}  # type: Mapping[str, Preset]
    dataset_rules = ()  # type: Tuple[DatasetRule, ...]
    published = ()  # type: Tuple[Published, ...]
    recipes = ()  # type: Tuple[Recipe, ...]
    reference = {}  # type: Mapping[str, Trainer]
    checkpoint_settings = ()  # type: Tuple[ShapeSetting, ...]
    checkpoint_word_init = False
    aliases = {}  # type: Mapping[str, Tuple[str, Tuple[str, ...]]]


# ---------------------------------------------------------------------------------------- published numbers
@dataclass(frozen=True)
class Published:
    """Accuracies in percent; rows are datasets (or ``average``), columns ``base`` / ``new`` / ``H``
    (base-to-new), the number of shots (few-shot) or ``acc`` (cross-dataset, domain generalisation). A table cell
    is compared only with an entry of the same protocol, method and backbone."""

    protocol: str
    method: str
    backbone: str
    source: str
    rows: Rows


def b2n_cell(base: float, new: float, h: float) -> Dict[str, float]:
    return {"base": base, "new": new, "H": h}


def b2n_rows(per_dataset: str, average: str) -> Rows:
    """``"B/N/H B/N/H …"`` for the 11 benchmarks in table order, plus the average."""
    cells = [tuple(float(x) for x in c.split("/")) for c in per_dataset.split()]
    rows = {d: b2n_cell(*c) for d, c in zip(BENCHMARKS, cells)}
    rows["average"] = b2n_cell(*(float(x) for x in average.split("/")))
    return rows


def shot_rows(per_dataset: Mapping[str, str], shots: Sequence[int] = FEWSHOT_SHOTS) -> Rows:
    """``{dataset: {"1": acc, "2": acc, ...}}`` from space-separated accuracies in the order of ``shots``."""
    return {name: dict(zip(map(str, shots), map(float, v.split()))) for name, v in per_dataset.items()}


def acc_rows(names: Sequence[str], values: str) -> Rows:
    """``{name: {"acc": value}}`` from space-separated values in the order of ``names``."""
    return {name: {"acc": float(v)} for name, v in zip(names, values.split())}


# ---------------------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """A paper's sweep: the protocol, methods, backbone, seeds and shots of ``vlprompt sweep``; every method
    setting comes from the components' presets."""

    name: str
    paper: str
    protocol: str
    methods: Tuple[str, ...]
    backbone: Tuple[str, str] = VIT_B16  # (open_clip model, pretrained tag)
    seeds: Tuple[int, ...] = SEEDS
    shots: Optional[Tuple[int, ...]] = None  # None: the protocol's
    note: str = ""


# ---------------------------------------------------------------------------------------- reference key maps
#: prefix of the prompt learner's tensors in whole-model checkpoints (optional in templates)
LEARNER_PREFIX = "prompt_learner."
#: the signature of a trainer that saves CoOp's context (with or without the ``prompt_learner.`` prefix)
CTX_NAME = r"^(prompt_learner\.)?ctx$"
_PLACEHOLDERS = {"{i}": r"(?P<i>\d+)", "{w}": r"(?P<w>weight|bias)", "*": r".+"}


@dataclass(frozen=True)
class Rule:
    """A family of reference tensor names (``ref``, a template) and what becomes of them (``kind``; the kinds and
    placeholders are described in :mod:`vlprompt.convert.keymap`)."""

    ref: str
    target: Optional[str] = None  # vlprompt name template (tensor, stack)
    kind: str = "tensor"  # tensor | stack | class_buffer | unused | frozen
    required: bool = False  # every expansion of {w} must be present
    first: int = 0  # stack: the index of the first layer
    #: the setting that fixes this tensor's value (a starting-values file may lack it: ``from_config``)
    config: Optional[str] = None
    regex: "re.Pattern[str]" = field(init=False, repr=False, compare=False)  # compiled from ``ref``

    def __post_init__(self):
        body = self.ref[len(LEARNER_PREFIX) :] if self.ref.startswith(LEARNER_PREFIX) else self.ref
        pattern = "".join(_PLACEHOLDERS.get(p, re.escape(p)) for p in re.split(r"(\{i\}|\{w\}|\*)", body))
        optional = r"(?:prompt_learner\.)?" if self.ref.startswith(LEARNER_PREFIX) else ""
        object.__setattr__(self, "regex", re.compile(optional + pattern))


@dataclass(frozen=True)
class Trainer:
    """The table of one reference trainer."""

    name: str  # the reference trainer class
    rules: Tuple[Rule, ...]
    #: ``"module:function"`` computing, from the converted tensors, vlprompt tensors the reference does not save
    derive: Optional[str] = None
    #: ``("section.key", value)`` settings every checkpoint of this trainer was trained with
    settings: Tuple[Tuple[str, Any], ...] = ()
    #: ``(add-on, tensor)``: a checkpoint without ``tensor`` was trained without that add-on's part (DePT's
    #: new-class runs save no head); it converts as the method without the add-on, whose tensors are ignored
    optional_addon: Optional[Tuple[str, str]] = None
    #: how its checkpoints are told apart (``vlprompt convert`` without ``--method``): regexes each matching some
    #: tensor name, and ``accepts`` (given the state dict) when names are not enough; of the trainers that match, the
    #: one of highest ``precedence`` wins (the most specific: a MaPLe checkpoint also holds CoOp's ``ctx``). Without
    #: a signature (CoOpNemesis and ProGrad save CoOp's names) a trainer is chosen only by ``--method``.
    signature: Tuple[str, ...] = ()
    precedence: int = 0
    accepts: Optional[Callable[[Mapping[str, Any]], bool]] = None

    def matches(self, state_dict: Mapping[str, Any]) -> bool:
        """Whether ``state_dict`` carries this trainer's signature."""
        names = list(state_dict)
        found = all(any(re.search(p, n) for n in names) for p in self.signature)
        return bool(self.signature) and found and (self.accepts is None or self.accepts(state_dict))


@dataclass(frozen=True)
class ShapeSetting:
    """A learner setting read from a converted tensor: ``key`` from ``read(tensors[tensor])``, ``absent`` when the
    checkpoint lacks the tensor (no deep prompts: depth 1)."""

    key: str
    tensor: str
    read: Callable[[Any], Any]
    absent: Any = None


def prompt_vectors(t) -> int:
    """Context / prompt vectors of a ``[..., n, width]`` tensor."""
    return t.shape[-2]


def prompt_tokens(t) -> int:
    """Tokens of a ``[n, width]`` vision prompt."""
    return t.shape[0]


def prompt_depth(t) -> int:
    """Prompt depth of stacked deep prompts ``[J - 1, n, width]``."""
    return t.shape[0] + 1


def dassl_table(*learnable: Rule) -> Tuple[Rule, ...]:
    """A Dassl trainer's own rules + the class buffers and frozen CLIP tensors any such trainer may save."""
    return (
        *learnable,
        Rule("prompt_learner.token_prefix", kind="class_buffer"),
        Rule("prompt_learner.token_suffix", kind="class_buffer"),
        Rule("prompt_learner.token_midfix", kind="class_buffer"),
        Rule("image_encoder.*", kind="frozen"),
        Rule("text_encoder.*", kind="frozen"),
        Rule("logit_scale", kind="frozen"),
    )
