"""Map a reference trainer's tensor names to vlprompt's task state-dict names.

One data table per reference trainer (:func:`trainers`, keyed by the vlprompt method that reproduces it; each
component declares its own in its ``config.py``, :mod:`vlprompt.components`) and one generic function,
:func:`to_vlprompt`. A table is a list of :class:`Rule` s; each rule is a name template of the reference and what
becomes of the tensors it matches:

* ``tensor`` — renamed to ``target`` (the same template placeholders filled in);
* ``stack`` — per-layer tensors stacked in layer order into one ``target`` ``[J−1, n, width]``: IVLP /
  PromptSRC / VPT keep block i's prompts inside the block (``…transformer.resblocks.{i}.VPT_shallow``,
  i = 1..J−1), MaPLe in a list (``compound_prompts_text.{i}``, i = 0..J−2);
* ``class_buffer`` — dropped: rebuilt from the class names (``token_prefix``, ``token_suffix``: the
  embedded [SOS] and "name." + [EOT] + padding around the context, as the reference's ``load_model`` does);
* ``unused`` — saved by the reference but never used by its forward (KgCoOp's ``bias_vectors``,
  ``meta_net`` and ``Adapter``): reported and ignored;
* ``frozen`` — frozen CLIP tensors of trainers that register the whole model (``image_encoder.*``,
  ``text_encoder.*``, ``logit_scale``; PromptSRC's zero-shot image encoder copy): returned apart, keyed
  by the reference name (:func:`clip_name` gives the OpenAI CLIP name to check them against a backbone).
  A name containing ``VPT`` is never frozen: the reference trains every such tensor.

Template placeholders: ``{i}`` a layer index, ``{w}`` ``weight`` or ``bias``, ``*`` any rest of the name.
Dassl saves the registered module's ``state_dict``: CoOp, CoCoOp, KgCoOp and CoOpNemesis register the
prompt learner itself (names without ``prompt_learner.``), the other trainers the whole model (names with
it), so a template starting ``prompt_learner.`` matches both forms. The same tables serve a
``.safetensors`` file keyed by the reference's names (``--init-from``). Tensors keep their stored dtype.

Names, from the reference code: CoOp / CoCoOp (Zhou et al., IJCV 2022 / CVPR 2022) ``ctx`` [M, D] or
[K, M, D] (class-specific), CoCoOp ``meta_net.linear{1,2}``; KgCoOp (Yao et al., CVPR 2023) as CoOp;
IVLP / VPT (MaPLe repository) ``prompt_learner.ctx``, ``image_encoder.VPT`` and the per-block
``VPT_shallow``; PromptSRC (Khattak et al., ICCV 2023) as IVLP, its saved weights being the Gaussian
prompt aggregate (and, as it weights the whole state dict, its frozen tensors carry fp16 rounding);
MaPLe (Khattak et al., CVPR 2023) ``ctx``, ``proj`` (V_0 = proj(P_0)), ``compound_prompts_text.{i}``
(P_{i+1}) and ``compound_prompt_projections.{i}`` (F_{i+1}); DePT (Zhang et al., CVPR 2024)
``film_lp_img`` / ``film_lp_text`` (FiLM scale and bias) and ``linear_probe_proj`` (the base-class head;
absent for runs that did not train one); RESTORE (Yang et al., ECCV 2024, released ``MaPLe_FSA``)
``text_adapter`` / ``visual_adapter`` (the Feature Calibrators: ``post_ln``, ``FFN.0``, ``FFN.2``) and
``text_cali_ratio`` / ``vis_cali_ratio``; CLIP-Adapter (Gao et al., IJCV 2023) ``fc.0.weight`` / ``fc.2.weight``
(the adapter's two linear layers); Tip-Adapter (Zhang et al., ECCV 2022) ``cache_keys`` / ``cache_values``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from vlprompt.components import Rule, Trainer
from vlprompt.errors import VLPromptError
from vlprompt.registry import declared, load_object
from vlprompt.task.composition import parse_method

#: how many names an error message lists
_SHOWN = 4


@dataclass
class ConvertedTensors:
    """The result of :func:`to_vlprompt`."""

    method: str  # the vlprompt method (a key of :func:`trainers`)
    trainer: str  # the reference trainer
    tensors: Dict[str, torch.Tensor]  # vlprompt names -> tensors (contiguous copies)
    dropped_class_buffers: List[str] = field(default_factory=list)  # reference names
    unused: List[str] = field(default_factory=list)  # reference names saved but never used
    frozen: Dict[str, torch.Tensor] = field(default_factory=dict)  # reference names -> frozen CLIP tensors
    derived: List[str] = field(default_factory=list)  # vlprompt names computed, not read (see the trainer)


def trainers() -> Dict[str, Trainer]:
    """vlprompt method -> the reference trainer that saves its tensors, as the registered components declare them."""
    return {name: trainer for table in declared("reference") for name, trainer in table.items()}


# ---------------------------------------------------------------------------------------------- methods
def _method_key(method: str) -> Tuple[str, frozenset]:
    """(base learner, add-ons) of a method string, presets expanded (``kgcoop+dept`` = coop + {kg, dept})."""
    composition = parse_method(method)
    return composition.base, frozenset(composition.addons)


def canonical_method(method: str) -> str:
    """The :func:`trainers` key equivalent to ``method`` (``coop+kg`` -> ``kgcoop``, ``ivlp+src`` ->
    ``promptsrc``); VLPromptError when no reference trainer saves that method."""
    wanted = _method_key(method)
    known = trainers()
    for name in known:
        if _method_key(name) == wanted:
            return name
    raise VLPromptError(
        f"--method {method!r}: no reference trainer saves that method; convertible: {', '.join(sorted(known))}"
    )


def infer_method(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The method whose reference trainer saves these tensor names: of the trainers whose declared signature the
    names carry (:class:`~vlprompt.components.Trainer`), the most specific.

    Ambiguous names resolve to the plain method: CoOp, CoOpNemesis and ProGrad save the same names (``coop``), an
    IVLP checkpoint without the frozen zero-shot encoder copy reads as ``ivlp`` rather than ``promptsrc``,
    and IVLP with text prompts of depth 1 only reads as ``coop``; ``--method`` disambiguates.
    """
    found = [(t.precedence, name) for name, t in trainers().items() if t.matches(state_dict)]
    if not found:
        names = list(state_dict)
        raise VLPromptError(
            f"cannot tell the method from the tensor names ({', '.join(names[:_SHOWN])}, ...); pass --method"
        )
    return max(found)[1]


# ---------------------------------------------------------------------------------------------- conversion
def _classify(trainer: Trainer, name: str) -> Tuple[Optional[Rule], Optional[re.Match]]:
    for rule in trainer.rules:
        if rule.kind == "frozen" and "VPT" in name:
            continue
        match = rule.regex.fullmatch(name)
        if match:
            return rule, match
    return None, None


def _stacked(method: str, rule: Rule, layers: Dict[int, torch.Tensor]) -> torch.Tensor:
    """The per-layer tensors of one stack rule, checked to be layers first, first+1, ... of one shape."""
    indices = sorted(layers)
    name = lambda i: rule.ref.replace("{i}", str(i))
    if indices[0] < rule.first:
        raise VLPromptError(f"{method}: unexpected {name(indices[0])} (layers start at {rule.first}); check the file")
    gaps = sorted(set(range(rule.first, indices[-1] + 1)) - set(indices))
    if gaps:
        missing = ", ".join(name(i) for i in gaps[:_SHOWN])
        raise VLPromptError(f"{method}: missing {missing}; is the checkpoint complete?")
    shapes = {tuple(layers[i].shape) for i in indices}
    if len(shapes) > 1:
        raise VLPromptError(f"{method}: the layers of {rule.ref} differ in shape ({sorted(shapes)}); check the file")
    return torch.stack([layers[i] for i in indices])


def _unknown_error(method: str, trainer: Trainer, unknown: List[str], state_dict) -> VLPromptError:
    try:
        guess = canonical_method(infer_method(state_dict))
    except VLPromptError:
        guess = None
    hint = f"they look like {guess}: pass --method {guess}" if guess and guess != method else "check --method"
    return VLPromptError(
        f"{method}: {len(unknown)} tensor(s) the reference {trainer.name} does not save "
        f"({', '.join(unknown[:_SHOWN])}{', ...' if len(unknown) > _SHOWN else ''}); {hint}"
    )


def to_vlprompt(method: str, state_dict: Mapping[str, torch.Tensor], from_config: bool = False) -> ConvertedTensors:
    """Rename a reference state dict to vlprompt's task state-dict names (see the module docstring).

    ``method`` is a vlprompt method string (:func:`canonical_method`); ``state_dict`` maps reference
    names to tensors (a Dassl checkpoint's ``state_dict`` or a safetensors file of the same names).
    Tensors neither mapped, dropped, unused nor frozen, and required tensors that are absent, raise one
    :class:`~vlprompt.errors.VLPromptError` naming the first few and the method. ``from_config``: a required
    tensor whose value a setting fixes (:attr:`Rule.config`, RESTORE's calibration ratios) may be absent — the
    task keeps the setting's value (starting values, ``--init-from``).
    """
    method = canonical_method(method)
    trainer = trainers()[method]
    out = ConvertedTensors(method, trainer.name, {})
    stacks: Dict[Rule, Dict[int, torch.Tensor]] = {}
    matched: set = set()  # (rule, weight|bias|None) seen, for the required check
    unknown: List[str] = []
    for name, tensor in state_dict.items():
        rule, match = _classify(trainer, name)
        if rule is None:
            unknown.append(name)
            continue
        matched.add((rule, match.groupdict().get("w")))
        if rule.kind == "class_buffer":
            out.dropped_class_buffers.append(name)
        elif rule.kind == "unused":
            out.unused.append(name)
        elif rule.kind == "frozen":
            out.frozen[name] = tensor
        elif rule.kind == "stack":
            stacks.setdefault(rule, {})[int(match.group("i"))] = tensor
        else:
            target = rule.target.format(**match.groupdict())
            if target in out.tensors:
                raise VLPromptError(f"{method}: two tensors map to {target} (one is {name}); check the file")
            out.tensors[target] = tensor.detach().clone(memory_format=torch.contiguous_format)
    if unknown:
        raise _unknown_error(method, trainer, unknown, state_dict)
    missing = [
        rule.ref.replace("{w}", w or "")
        for rule in trainer.rules
        if rule.required and not (from_config and rule.config)
        for w in (("weight", "bias") if "{w}" in rule.ref else (None,))
        if (rule, w) not in matched
    ]
    if missing:
        raise VLPromptError(
            f"{method}: missing {', '.join(missing[:_SHOWN])} (saved by the reference {trainer.name}); "
            f"check --method or the checkpoint"
        )
    for rule, layers in stacks.items():
        out.tensors[rule.target] = _stacked(method, rule, layers)
    if trainer.derive is not None:
        derived = load_object(trainer.derive)(out.tensors)
        out.tensors.update(derived)
        out.derived = sorted(derived)
    out.tensors = dict(sorted(out.tensors.items()))
    return out


def clip_name(reference_name: str) -> str:
    """The OpenAI CLIP state-dict name of a frozen reference tensor (``image_encoder.X`` -> ``visual.X``,
    ``text_encoder.X`` -> ``X``; PromptSRC's ``prompt_learner.ZS_image_encoder.X`` -> ``visual.X``)."""
    for prefix, clip in (("prompt_learner.ZS_image_encoder.", "visual."), ("image_encoder.", "visual.")):
        if reference_name.startswith(prefix):
            return clip + reference_name[len(prefix) :]
    return reference_name[len("text_encoder.") :] if reference_name.startswith("text_encoder.") else reference_name
