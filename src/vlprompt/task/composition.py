"""Method strings: a base method (prompt learner) plus add-ons joined by ``+``.

``coop``, ``coop+nemesis``, ``kgcoop+dept``, ``maple+dept+restore``, ``ivlp+src`` ... ``kgcoop`` and ``promptsrc``
are aliases of ``coop+kg`` and ``ivlp+src``; an add-on may imply others (``src`` implies ``gpa``: PromptSRC is
its self-regulating losses plus Gaussian prompt aggregation), so ``promptsrc``, ``ivlp+src`` and
``ivlp+src+gpa`` are one composition. :func:`check_composition` checks a composition against the learner's
capabilities before anything is built (a fitted learner, :mod:`vlprompt.engine.fitting`, takes no add-ons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Tuple

from vlprompt.capabilities import Capability
from vlprompt.errors import VLPromptError
from vlprompt.registry import ADDONS, LEARNERS, declared
from vlprompt.settings import check_bounds


def aliases() -> Dict[str, Tuple[str, Tuple[str, ...]]]:
    """User-facing method names that expand to a base method plus add-ons, as the components declare them
    (``aliases`` in their ``config.py``: ``kgcoop`` = ``coop+kg`` is KgCoOp's)."""
    return {name: expansion for table in declared("aliases") for name, expansion in table.items()}


@dataclass(frozen=True)
class Composition:
    """A parsed method string: ``method`` as written (lower-cased), ``base`` learner and ``addons`` in order
    (aliases expanded, implied add-ons added right after the one that implies them)."""

    method: str
    base: str
    addons: Tuple[str, ...]

    @property
    def components(self) -> Tuple[str, ...]:
        return (self.base, *self.addons)

    def configs(self) -> List[Tuple[str, type]]:
        """``[(name, config class)]`` of the learner and every add-on, in method order (no model library)."""
        return [(self.base, LEARNERS.config(self.base))] + [(a, ADDONS.config(a)) for a in self.addons]


def parse_method(method: str) -> Composition:
    """``"kgcoop+dept"`` -> ``Composition("kgcoop+dept", "coop", ("kg", "dept"))``; one-line errors for unknown
    names, two base methods, an add-on named twice or an empty part."""
    text = method.strip().lower()
    parts = [p.strip() for p in text.split("+")]
    if not text or any(not p for p in parts):
        raise VLPromptError(
            f"--method {method!r}: expected a base method plus add-ons joined by '+', e.g. coop+nemesis"
        )
    head, rest = parts[0], parts[1:]
    known = aliases()
    base, implied = known.get(head, (head, ()))
    LEARNERS.config(base)  # unknown base method: one line listing the choices
    addons: List[str] = []
    named: List[str] = []

    def add(name: str, explicit: bool) -> None:
        if explicit:
            if name in named:
                raise VLPromptError(f"--method {method!r} names add-on {name!r} twice")
            named.append(name)
        if name in addons:
            return
        addons.append(name)
        for extra in ADDONS.config(name).implies:
            add(extra, explicit=False)

    for name in implied:
        add(name, explicit=False)
    for name in rest:
        if name in LEARNERS or name in known:
            raise VLPromptError(
                f"--method {method!r} combines two base methods ({head}, {name}); use one base plus add-ons"
            )
        ADDONS.config(name)  # unknown add-on: one line listing the choices
        add(name, explicit=True)
    return Composition(text, base, tuple(addons))


def check_composition(composition: Composition, configs: Mapping[str, object], backbone) -> None:
    """Refuse, with one line, a composition whose add-ons need what the learner does not provide with these
    configs on this backbone, or whose component configs are invalid for it. Nothing is built."""
    for name, config in configs.items():  # configs built in code skip make_section's range check
        check_bounds(type(config), vars(config), name)
    learner_cls = LEARNERS.get(composition.base)
    if learner_cls.fitted and composition.addons:
        raise VLPromptError(
            f"{composition.method}: {composition.base!r} is fitted, not trained, and add-ons act on training; "
            f"use --method {composition.base} alone"
        )
    provides = learner_cls.capabilities(configs[composition.base], backbone)
    for name in composition.addons:
        config = configs[name]
        impl = ADDONS.get(name).implementation(config)
        missing = sorted(impl.requirements(config) - provides)
        if missing:
            raise VLPromptError(
                f"{composition.method}: add-on {name!r} needs {', '.join(missing)}, which {composition.base!r} "
                f"does not provide (it provides {', '.join(sorted(provides)) or 'nothing'})"
            )
        for tower in sorted(impl.tap_towers(config)):
            if Capability.LAYER_TAPS not in backbone.capabilities(tower):
                kind = "a ViT image tower" if tower == "vision" else f"per-layer taps of the {tower} tower"
                raise VLPromptError(f"{composition.method}: add-on {name!r} needs {kind}")
        reason = impl.check_config(config, provides)
        if reason:
            raise VLPromptError(f"{composition.method}: {reason}")
