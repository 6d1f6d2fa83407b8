"""Published settings, kept next to the components they belong to, resolved by composition and dataset.

Every learner's and add-on's config class may declare (as class attributes)

* ``presets`` — ``{name: Preset}``: the settings its paper or repository publishes for a protocol (``fewshot``,
  ``b2n``, ``xd``) or a re-run variant (``dept``: DePT's 10-epoch re-runs; ``promptsrc``: IVLP as configured in
  the PromptSRC repository). A preset holds values for any config section (``train``, ``data``, or a
  component name), so KgCoOp's preset can set CoOp's ``ctx_init``;
* ``dataset_rules`` — :class:`DatasetRule` s: values that the reference code sets for particular datasets
  (ImageNet's 50 CoOp epochs, Nemesis' ω ≡ 1 on Food101/OxfordPets, RESTORE's calibration ratios, ...).

:func:`resolve` composes them for a method string, later wins: dataclass defaults → for each component in
method order, its preset then its dataset rules → explicit flags → ``--set``. So ``coop+kg`` resolves exactly like
``kgcoop`` and ``ivlp+src`` like ``promptsrc`` (an alias is only another spelling of the same components).
Every value records where it came from (:attr:`Resolution.sources`), which ``vlprompt presets`` prints and
``config.yaml`` stores.

The preset *name* used for every component is: ``--preset`` if given; else the ``composition_preset`` a component
declares (DePT's ``dept``: its re-runs fix the settings of every base); else the protocol (``dg`` uses ``xd``: they share the source
model); else the method's *home* protocol, the first protocol preset of the last component that declares one (few-shot for
CoOp and Nemesis, base-to-new for KgCoOp, PromptSRC, MaPLe, RESTORE). A component without a preset of that name
uses, when the name is a variant rather than a protocol (``dept``, ``promptsrc``), its preset for the protocol
(or the home protocol); otherwise it contributes nothing but its dataset rules, so protocols never mix. A preset
or rule whose source configured another composition names the components it does not apply with
(``not_with``): RESTORE's MaPLe_FSA settings stay out of ``promptsrc+restore``, which keeps PromptSRC's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from vlprompt.errors import VLPromptError
from vlprompt.protocols import PROTOCOLS, get_protocol

#: section -> key -> value
Values = Mapping[str, Mapping[str, Any]]
#: ``train`` keys a preset may give as a ``{shots: value}`` table (CoOp's epochs, CLIP-LoRA's ``n_iters × shots``)
SHOT_TABLES = ("epochs", "steps")


@dataclass(frozen=True)
class Preset:
    """Values of one published setting; ``train.epochs`` and ``train.steps`` may be ``{shots: value}`` tables (CoOp
    few-shot epochs, CLIP-LoRA's iterations).
    ``not_with``: component names in whose presence it does not apply."""

    values: Values
    source: str
    not_with: FrozenSet[str] = frozenset()


@dataclass(frozen=True)
class DatasetRule:
    """Values the reference sets for ``datasets``; ``presets`` limits the rule to some preset names (None: any);
    ``not_with``: component names in whose presence it does not apply."""

    datasets: FrozenSet[str]
    values: Values
    source: str
    presets: Optional[FrozenSet[str]] = None
    not_with: FrozenSet[str] = frozenset()

    def applies(self, dataset: Optional[str], preset: Optional[str]) -> bool:
        return dataset in self.datasets and (self.presets is None or preset in self.presets)


def rule(
    datasets: Sequence[str],
    values: Values,
    source: str,
    presets: Optional[Sequence[str]] = None,
    not_with: Sequence[str] = (),
) -> DatasetRule:
    chosen = frozenset(presets) if presets is not None else None
    return DatasetRule(frozenset(datasets), values, source, chosen, frozenset(not_with))


@dataclass
class Resolution:
    """Resolved section values and, for every ``section.key`` that is not a dataclass default, its source."""

    preset: Optional[str]
    values: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    sources: Dict[str, str] = field(default_factory=dict)

    def set(self, section: str, key: str, value: Any, source: str) -> None:
        self.values.setdefault(section, {})[key] = value
        self.sources[f"{section}.{key}"] = source

    def update(self, values: Values, source: str, shots: int) -> None:
        for section, entries in values.items():
            for key, value in entries.items():
                where = source
                if section == "train" and key in SHOT_TABLES and isinstance(value, Mapping):
                    value = value.get(shots, max(value.values()))
                    where = f"{source}, {shots} shots"
                self.set(section, key, value, where)


def preset_names(components: Sequence[Tuple[str, type]], protocol: Optional[str], preset: Optional[str]):
    """``(name, fallback)``: the preset name every component uses, and the protocol preset a component without
    that name falls back to (None when ``name`` is itself a protocol); see the module doc."""
    declared = [c for _, c in components if getattr(c, "presets", None)]
    available = sorted({name for c in declared for name in c.presets})
    if protocol is not None and protocol not in PROTOCOLS:
        raise VLPromptError(f"unknown --protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    if preset is not None and preset not in available:
        raise VLPromptError(
            f"unknown --preset {preset!r} for this method; choose one of: {', '.join(available) or '(none)'}"
        )
    home = next((n for c in reversed(declared) for n in c.presets if n in PROTOCOLS), None)
    base = (get_protocol(protocol).preset if protocol is not None else None) or home
    if preset is None:  # a component that declares its preset the whole composition's (DePT)
        preset = next(
            (c.composition_preset for c in declared if getattr(c, "composition_preset", None) in available), None
        )
    name = preset or base
    return name, (base if name not in PROTOCOLS and base != name else None)


def resolve(
    components: Sequence[Tuple[str, type]],
    *,
    protocol: Optional[str] = None,
    preset: Optional[str] = None,
    dataset: Optional[str] = None,
    shots: int = 0,
    flags: Optional[Values] = None,
    overrides: Sequence[Tuple[str, str, Any]] = (),
) -> Resolution:
    """Compose the presets and dataset rules of ``components`` (``(name, config class)`` pairs, in method order),
    then ``flags``
    (``{section: {key: value}}`` from dedicated options such as ``--epochs``) and ``overrides``
    (``(section, key, value)`` from ``--set``)."""
    name, fallback = preset_names(components, protocol, preset)
    res = Resolution(preset=name)
    present = {n for n, _ in components}
    for component, config_class in components:
        table = getattr(config_class, "presets", {})
        used = name if name in table else fallback
        chosen = table.get(used)
        if chosen is not None and not chosen.not_with & present:
            res.update(chosen.values, f"preset {component}:{used} ({chosen.source})", shots)
        for r in getattr(config_class, "dataset_rules", ()):
            if r.applies(dataset, used) and not r.not_with & present:
                res.update(r.values, f"dataset rule {component}:{dataset} ({r.source})", shots)
    for section, entries in (flags or {}).items():
        for key, value in entries.items():
            if value is not None:
                res.set(section, key, value, "flag")
    for section, key, value in overrides:
        res.set(section, key, value, "--set")
    return res


def describe(sources: Mapping[str, str], values: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """``section.key = value   <- source`` lines for every resolved value (``default`` where none is recorded)."""
    lines = []
    for section, entries in values.items():
        for key, value in entries.items():
            dotted = f"{section}.{key}"
            lines.append(f"{dotted:<32} {value!r:<24} <- {sources.get(dotted, 'default')}")
    return lines
