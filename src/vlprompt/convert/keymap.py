"""Map a reference trainer's tensor names to vlprompt's task state-dict names.

One data table per reference trainer (:data:`TRAINERS`, keyed by the vlprompt method that reproduces
it) and one generic function, :func:`to_vlprompt`. A table is a list of :class:`Rule` s; each rule is a
name template of the reference and what becomes of the tensors it matches:

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
``text_cali_ratio`` / ``vis_cali_ratio``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch

from vlprompt.errors import VLPromptError
from vlprompt.task.composition import parse_method

#: prefix of the prompt learner's tensors in whole-model checkpoints (optional in templates)
LEARNER_PREFIX = "prompt_learner."
_PLACEHOLDERS = {"{i}": r"(?P<i>\d+)", "{w}": r"(?P<w>weight|bias)", "*": r".+"}
#: how many names an error message lists
_SHOWN = 4


@dataclass(frozen=True)
class Rule:
    """A family of reference tensor names (``ref``, a template) and what becomes of them (``kind``)."""

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
    #: computes vlprompt tensors the reference does not save from the converted ones
    derive: Optional[Callable[[Dict[str, torch.Tensor]], Dict[str, torch.Tensor]]] = None


@dataclass
class ConvertedTensors:
    """The result of :func:`to_vlprompt`."""

    method: str  # the vlprompt method (a key of :data:`TRAINERS`)
    trainer: str  # the reference trainer
    tensors: Dict[str, torch.Tensor]  # vlprompt names -> tensors (contiguous copies)
    dropped_class_buffers: List[str] = field(default_factory=list)  # reference names
    unused: List[str] = field(default_factory=list)  # reference names saved but never used
    frozen: Dict[str, torch.Tensor] = field(default_factory=dict)  # reference names -> frozen CLIP tensors
    derived: List[str] = field(default_factory=list)  # vlprompt names computed, not read (see the trainer)


# ---------------------------------------------------------------------------------------------- tables
def _table(*learnable: Rule) -> Tuple[Rule, ...]:
    """A trainer's own rules + the class buffers and frozen CLIP tensors any trainer may save."""
    return (
        *learnable,
        Rule("prompt_learner.token_prefix", kind="class_buffer"),
        Rule("prompt_learner.token_suffix", kind="class_buffer"),
        Rule("prompt_learner.token_midfix", kind="class_buffer"),
        Rule("image_encoder.*", kind="frozen"),
        Rule("text_encoder.*", kind="frozen"),
        Rule("logit_scale", kind="frozen"),
    )


CTX = Rule("prompt_learner.ctx", "learner.ctx", required=True)
COCOOP_META = (
    Rule("prompt_learner.meta_net.linear1.{w}", "learner.meta_net.linear1.{w}", required=True),
    Rule("prompt_learner.meta_net.linear2.{w}", "learner.meta_net.linear2.{w}", required=True),
)
#: KgCoOp's module defines these but its forward never uses them; a whole-model checkpoint (DePT) holds the
#: meta-net twice, as ``prompt_learner.meta_net`` and as its alias ``meta_net`` (both match the first form)
KGCOOP_UNUSED = (
    Rule("prompt_learner.bias_vectors", kind="unused"),
    Rule("prompt_learner.meta_net.linear1.{w}", kind="unused"),
    Rule("adapter.fc.{i}.weight", kind="unused"),
)
TEXT_DEEP_IVLP = Rule("text_encoder.transformer.resblocks.{i}.VPT_shallow", "learner.text_deep", "stack", first=1)
VISION_IVLP = (
    Rule("image_encoder.VPT", "learner.vision_ctx", required=True),
    Rule("image_encoder.transformer.resblocks.{i}.VPT_shallow", "learner.vision_deep", "stack", first=1),
)
MAPLE = (
    CTX,
    Rule("prompt_learner.proj.{w}", "learner.proj.{w}", required=True),
    Rule("prompt_learner.compound_prompts_text.{i}", "learner.text_deep", "stack"),
    Rule("prompt_learner.compound_prompt_projections.{i}.{w}", "learner.couplings.{i}.{w}"),
)
#: DePT's ExtrasLinearProbe* trainers: FiLM (cwT module) + the linear head (base-class runs only)
DEPT = (
    Rule("film_lp_img.scale", "addons.dept.film_v_scale", required=True),
    Rule("film_lp_img.bias", "addons.dept.film_v_bias", required=True),
    Rule("film_lp_text.scale", "addons.dept.film_t_scale", required=True),
    Rule("film_lp_text.bias", "addons.dept.film_t_bias", required=True),
    Rule("linear_probe_proj.{w}", "addons.dept.head.{w}"),
)
#: MaPLe_FSA's Feature Calibrators (post_ln -> FFN.0 -> QuickGELU -> FFN.2) and calibration ratios
RESTORE = tuple(
    Rule(f"{ref}_adapter.{layer}.{{w}}", f"addons.restore.calibrator_{tower}.{ours}.{{w}}", required=True)
    for ref, tower in (("text", "t"), ("visual", "v"))
    for layer, ours in (("post_ln", "norm"), ("FFN.0", "fc1"), ("FFN.2", "fc2"))
) + (
    Rule("text_cali_ratio", "addons.restore.text_ratio", required=True, config="restore.text_calib_r"),
    Rule("vis_cali_ratio", "addons.restore.vis_ratio", required=True, config="restore.vis_calib_r"),
)


def restore_initial_grams(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``addons.restore.init_gram_{t,v}``: ‖P_iᵀP_i‖_F and ‖V_iᵀV_i‖_F (V_i = F_i(P_i)) per deep layer.

    MaPLe_FSA does not save them: it captures them, detached, at its model's first forward, which after
    loading a checkpoint (``load_model`` or ``INIT_WEIGHTS``) sees the loaded prompts. They are derived the
    same way here, from the converted prompts and couplings.
    """
    from vlprompt.addons.restore_code import gram_norm  # the add-on's own definition

    deep = tensors.get("learner.text_deep", torch.zeros(0, 0, 0))
    grams_t, grams_v = [], []
    for i, p in enumerate(deep.unbind(0)):
        names = (f"learner.couplings.{i}.weight", f"learner.couplings.{i}.bias")
        if any(n not in tensors for n in names):
            raise VLPromptError(
                f"maple+restore: deep text prompt {i} has no coupling "
                f"(prompt_learner.compound_prompt_projections.{i}.*); is the checkpoint complete?"
            )
        v = p.float() @ tensors[names[0]].float().t() + tensors[names[1]].float()
        grams_t.append(gram_norm(p))
        grams_v.append(gram_norm(v))
    stack = lambda grams: torch.stack(grams) if grams else torch.zeros(0)
    return {"addons.restore.init_gram_t": stack(grams_t), "addons.restore.init_gram_v": stack(grams_v)}


#: vlprompt method -> the reference trainer that saves its tensors
TRAINERS: Dict[str, Trainer] = {
    "coop": Trainer("CoOp", _table(CTX)),
    "coop+nemesis": Trainer("CoOpNemesis", _table(CTX)),
    "coop+dept": Trainer("ExtrasLinearProbeCoOp", _table(CTX, *DEPT)),
    "cocoop": Trainer("CoCoOp", _table(CTX, *COCOOP_META)),
    "cocoop+dept": Trainer("ExtrasLinearProbeCoCoOp", _table(CTX, *COCOOP_META, *DEPT)),
    "kgcoop": Trainer("KgCoOp", _table(CTX, *KGCOOP_UNUSED)),
    "kgcoop+dept": Trainer("ExtrasLinearProbeKgCoOp", _table(CTX, *KGCOOP_UNUSED, *DEPT)),
    "ivlp": Trainer("IVLP", _table(CTX, TEXT_DEEP_IVLP, *VISION_IVLP)),
    "lpt": Trainer("IVLP (language prompts only)", _table(CTX, TEXT_DEEP_IVLP)),
    "vpt": Trainer("VPT", _table(*VISION_IVLP)),
    "promptsrc": Trainer(
        "PromptSRC",
        _table(CTX, TEXT_DEEP_IVLP, *VISION_IVLP, Rule("prompt_learner.ZS_image_encoder.*", kind="frozen")),
    ),
    "maple": Trainer("MaPLe", _table(*MAPLE)),
    "maple+dept": Trainer("ExtrasLinearProbeMaPLe", _table(*MAPLE, *DEPT)),
    "maple+restore": Trainer("MaPLe_FSA", _table(*MAPLE, *RESTORE), derive=restore_initial_grams),
    "coop+prograd": Trainer("ProGrad", _table(CTX)),
    # TCP's textual knowledge embedding has CoCoOp's meta-net names (linear2: 4·ctx_dim outputs, not ctx_dim)
    "tcp": Trainer("TCP", _table(CTX, *COCOOP_META)),
}


# ---------------------------------------------------------------------------------------------- methods
def _method_key(method: str) -> Tuple[str, frozenset]:
    """(base learner, add-ons) of a method string, presets expanded (``kgcoop+dept`` = coop + {kg, dept})."""
    composition = parse_method(method)
    return composition.base, frozenset(composition.addons)


def canonical_method(method: str) -> str:
    """The :data:`TRAINERS` key equivalent to ``method`` (``coop+kg`` -> ``kgcoop``, ``ivlp+src`` ->
    ``promptsrc``); VLPromptError when no reference trainer saves that method."""
    wanted = _method_key(method)
    for name in TRAINERS:
        if _method_key(name) == wanted:
            return name
    raise VLPromptError(
        f"--method {method!r}: no reference trainer saves that method; convertible: {', '.join(TRAINERS)}"
    )


def _tke(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether the meta-net is TCP's knowledge embedding (several tokens per class: outputs a multiple of the context
    width) rather than CoCoOp's (one bias of the context width)."""
    get = lambda n: state_dict.get(n, state_dict.get(f"prompt_learner.{n}"))
    ctx, out = get("ctx"), get("meta_net.linear2.weight")
    return ctx is not None and out is not None and out.shape[0] != ctx.shape[-1]


def infer_method(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The method whose reference trainer saves these tensor names.

    Ambiguous names resolve to the plain method: CoOp, CoOpNemesis and ProGrad save the same names (``coop``), an
    IVLP checkpoint without the frozen zero-shot encoder copy reads as ``ivlp`` rather than ``promptsrc``,
    and IVLP with text prompts of depth 1 only reads as ``coop``; ``--method`` disambiguates.
    """
    names = list(state_dict)
    has = lambda pattern: any(re.search(pattern, n) for n in names)
    if has(r"^((text|visual)_adapter\.|(text|vis)_cali_ratio$)"):
        base = "maple+restore"
    elif has(r"^(prompt_learner\.)?(compound_prompt|proj\.weight$)"):
        base = "maple"
    elif has(r"^prompt_learner\.ZS_image_encoder\."):
        base = "promptsrc"
    elif has(r"VPT"):
        text, vision = has(r"^(prompt_learner\.)?ctx$"), has(r"^image_encoder\.VPT$")
        base = "ivlp" if text and vision else "lpt" if text else "vpt"
    elif has(r"^(prompt_learner\.)?meta_net\.linear2\."):
        base = "tcp" if _tke(state_dict) else "cocoop"
    elif has(r"^(prompt_learner\.)?bias_vectors$"):
        base = "kgcoop"
    elif has(r"^(prompt_learner\.)?ctx$"):
        base = "coop"
    else:
        raise VLPromptError(
            f"cannot tell the method from the tensor names ({', '.join(names[:_SHOWN])}, ...); pass --method"
        )
    return base + "+dept" if has(r"^(film_lp_(img|text)|linear_probe_proj)\.") and "+" not in base else base


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
    trainer = TRAINERS[method]
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
        derived = trainer.derive(out.tensors)
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
