"""Resolve ``--backbone`` / ``--pretrained`` into an open_clip CLIP model (fp32, frozen, eval).

``--backbone`` is one of
  * ``toy`` — the embedded, offline toy CLIP (:mod:`vlprompt.toy.model`);
  * an open_clip model name (``ViT-B-16``, ``RN50``, ``ViT-B/16`` is accepted too; ``ViT-B-16-quickgelu``
    is the same architecture with OpenAI's QuickGELU);
  * a path to an open_clip model-config JSON (``{"embed_dim", "vision_cfg", "text_cfg", ...}``, or an
    ``open_clip_config.json`` holding it under ``model_cfg``) for custom / tiny architectures;
  * a Hugging Face ``transformers`` ``CLIPModel`` folder (``config.json`` + ``model.safetensors``): the open_clip
    architecture it corresponds to, with its own weights (:mod:`vlprompt.backbones.hf_clip`).

``--pretrained`` is one of
  * ``None`` — the embedded weights for ``toy``; the ``openai`` tag for a named model that has one;
  * ``none`` (any case) — random initialisation (tests, debugging), drawn from the fixed seed
    :data:`RANDOM_WEIGHTS_SEED` so that a run's evaluation rebuilds the weights it trained on; recorded as
    ``none`` and said once in the log;
  * an open_clip tag (``openai``, ``laion2b_s34b_b88k``, ...) — downloaded through open_clip when the
    network is reachable, or found in the Hugging Face cache; without network it fails within seconds;
  * a local file: ``.safetensors``, a ``.pt``/``.bin``/``.pth`` state dict, or an OpenAI JIT archive;
  * a local directory holding such a file (open_clip / HF Hub layout), or a ``CLIPModel`` folder, whose
    architecture must then be the one of ``--backbone``.

The MLP activation follows the weights (OpenAI's CLIP, Radford et al., ICML 2021, uses QuickGELU,
``x * sigmoid(1.702 x)``; open_clip's plain configs use GELU): see :func:`resolve_activation`.

Pickled files are read with ``torch.load(weights_only=True)``; a file that needs full unpickling is
refused unless ``trust_pickle=True`` (unpickling can run arbitrary code).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, NamedTuple, Optional, Tuple
from urllib.parse import urlparse

import torch

from vlprompt.backbones import hf_clip
from vlprompt.errors import VLPromptError

log = logging.getLogger(__name__)

#: file names searched, in order, inside a ``--pretrained`` directory
PREFERRED_WEIGHT_NAMES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "model.safetensors",
    "open_clip_pytorch_model.bin",
    "pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.pth",
    "model.pt",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
NETWORK_PROBE_TIMEOUT_S = 3.0
#: entries only OpenAI's JIT archives carry; a state dict holding them was saved from one
OPENAI_JIT_ONLY_KEYS = ("input_resolution", "context_length", "vocab_size")
#: the HF Hub / open_clip export's config file that sits next to the weights
OPEN_CLIP_CONFIG_NAME = "open_clip_config.json"
#: ``--pretrained`` value (and record) of random weights
RANDOM_WEIGHTS = "none"
#: the seed random weights are drawn from (the caller's RNG state is left as it was)
RANDOM_WEIGHTS_SEED = 0


@dataclass(frozen=True)
class BackboneSpec:
    """What a run records about its backbone (``weights.json``, ``results.json``).

    ``quick_gelu`` is the MLP activation actually built (QuickGELU or GELU) and ``activation_reason`` the
    rule of :func:`resolve_activation` that chose it.
    """

    backbone: str
    pretrained: str
    config: Dict
    quick_gelu: bool = False
    activation_reason: str = ""
    #: the weights file read (None: random or embedded weights); its folder may hold the tokenizer
    weights_path: Optional[Path] = None


def _openclip():
    import open_clip

    return open_clip


def _builtin_name(name: str) -> Optional[str]:
    cleaned = name.replace("/", "-")
    return cleaned if cleaned in _openclip().list_models() else None


def _read_config_json(path: Path) -> Dict:
    try:
        cfg = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise VLPromptError(f"cannot read backbone config {path}: {exc}") from None
    if "model_cfg" in cfg:  # open_clip_config.json (HF Hub layout)
        cfg = cfg["model_cfg"]
    if not isinstance(cfg, dict) or "vision_cfg" not in cfg or "text_cfg" not in cfg:
        raise VLPromptError(
            f"backbone config {path} is not an open_clip model config: it needs embed_dim, vision_cfg "
            "and text_cfg (see open_clip/model_configs/*.json)"
        )
    return cfg


def resolve_config(backbone: str) -> Tuple[Dict, Optional[str]]:
    """Return ``(open_clip model config, builtin name or None)`` for ``--backbone``."""
    if backbone == "toy":
        from vlprompt.toy.model import toy_model_config

        return toy_model_config(), None
    if hf_clip.is_hf_clip_dir(Path(backbone).expanduser()):
        return hf_clip.hf_clip_config(Path(backbone).expanduser()), None
    builtin = _builtin_name(backbone)
    if builtin is not None:
        return dict(_openclip().get_model_config(builtin)), builtin
    path = Path(backbone).expanduser()
    if path.is_file():
        return _read_config_json(path), None
    if backbone.endswith(".json") or os.sep in backbone:
        raise VLPromptError(f"backbone config file not found: {path} (check --backbone)")
    names = [n for n in _openclip().list_models() if n.startswith(("ViT-B", "ViT-L", "RN"))][:12]
    raise VLPromptError(
        f"unknown --backbone {backbone!r}: use `toy`, an open_clip model name (e.g. {', '.join(names)}, ...; "
        "`python -c 'import open_clip; print(open_clip.list_models())'` lists all) or a model-config JSON path"
    )


def build_model(config: Dict) -> torch.nn.Module:
    """Instantiate an open_clip CLIP (or CustomTextCLIP) from a model config, fp32, random weights."""
    oc = _openclip()
    cfg = dict(config)
    custom_text = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    if "multimodal_cfg" in cfg:
        raise VLPromptError("CoCa-style backbones (multimodal_cfg) are not supported for prompt learning")
    cls = oc.model.CustomTextCLIP if custom_text else oc.model.CLIP
    try:
        return cls(**cfg)
    except TypeError as exc:
        raise VLPromptError(f"invalid open_clip model config: {exc}") from None


def architecture_fields(config: Dict) -> Dict:
    """A model config with every tower setting spelled out (open_clip's defaults filled in) and the activation
    left out: equal for two configs that build the same architecture."""
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    def tower(cls, values):
        try:
            return dataclasses.asdict(cls(**values))
        except TypeError:
            return dict(values)

    return {
        "embed_dim": config.get("embed_dim"),
        "vision_cfg": tower(CLIPVisionCfg, config.get("vision_cfg", {})),
        "text_cfg": tower(CLIPTextCfg, config.get("text_cfg", {})),
        **{k: v for k, v in config.items() if k not in ("embed_dim", "vision_cfg", "text_cfg", "quick_gelu")},
    }


def matching_builtin(config: Dict) -> Optional[str]:
    """The first open_clip model name whose architecture is ``config``'s (None when no name matches)."""
    target = architecture_fields(config)
    oc = _openclip()
    for name in oc.list_models():
        if not name.endswith("-quickgelu") and architecture_fields(oc.get_model_config(name)) == target:
            return name
    return None


def _check_hf_architecture(directory: Path, config: Dict, backbone: str) -> None:
    """A ``CLIPModel`` folder given as ``--pretrained`` must hold ``--backbone``'s architecture."""
    own = hf_clip.hf_clip_config(directory)
    if architecture_fields(own) == architecture_fields(config):
        return
    name = matching_builtin(own)
    also = f" (= open_clip's {name})" if name else ""
    raise VLPromptError(
        f"--pretrained {directory} is a Hugging Face CLIPModel whose architecture is not --backbone {backbone}'s; "
        f"pass --backbone {directory} to use its own architecture{also}"
    )


# -------------------------------------------------------------------------------------- activation
def activation_name(quick_gelu: bool) -> str:
    return "QuickGELU" if quick_gelu else "GELU"


def _open_clip_config_beside(weights_path: Optional[Path]) -> Optional[bool]:
    """``model_cfg.quick_gelu`` of an ``open_clip_config.json`` next to the weights; None without one."""
    if weights_path is None:
        return None
    path = Path(weights_path).parent / OPEN_CLIP_CONFIG_NAME
    if not path.is_file():
        return None
    try:
        model_cfg = json.loads(path.read_text()).get("model_cfg")
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    return bool(model_cfg.get("quick_gelu", False)) if isinstance(model_cfg, dict) else None


class Activation(NamedTuple):
    """The MLP activation chosen by :func:`resolve_activation`."""

    quick_gelu: bool
    reason: str
    #: no rule but the architecture's default applied (nothing said which activation the weights need)
    by_default: bool = False


def resolve_activation(
    config: Dict,
    arch: str,
    *,
    override: Optional[bool] = None,
    override_reason: Optional[str] = None,
    openai_jit: bool = False,
    state_keys: Iterable[str] = (),
    tag: Optional[str] = None,
    tag_cfg: Optional[Dict] = None,
    weights_path: Optional[Path] = None,
) -> Activation:
    """Decide QuickGELU vs GELU for the MLPs of every transformer block: ``(quick_gelu, reason, by_default)``.

    OpenAI's CLIP (Radford et al., ICML 2021) was trained with QuickGELU, ``x * sigmoid(1.702 x)``;
    open_clip's plain configs (``ViT-B-16``, ``RN50``) build GELU, so OpenAI weights need QuickGELU
    whatever file they come from. The first rule that applies decides:

    1. ``override`` (``--quick-gelu`` / ``--no-quick-gelu``);
    2. the weights are an OpenAI JIT archive -> QuickGELU;
    3. the state dict holds OpenAI's JIT-only entries (``input_resolution``, ``context_length``,
       ``vocab_size``: a JIT archive's state dict re-saved) -> QuickGELU;
    4. the architecture asks for it (a ``*-quickgelu`` open_clip name, or a model-config JSON with
       ``"quick_gelu": true``) -> QuickGELU;
    5. an open_clip pretrained tag -> its pretrained config's ``quick_gelu``;
    6. an ``open_clip_config.json`` next to the weights -> its ``model_cfg.quick_gelu``;
    7. otherwise the architecture's default, GELU.

    ``arch`` names the architecture in the reason (open_clip name or config path).
    """
    if override is not None:
        return Activation(override, override_reason or ("--quick-gelu" if override else "--no-quick-gelu"))
    if openai_jit:
        return Activation(True, "OpenAI JIT archive")
    keys = set(state_keys)
    found = [k for k in OPENAI_JIT_ONLY_KEYS if k in keys]
    if found:
        return Activation(True, f"OpenAI state dict: {', '.join(found)} entries")
    if config.get("quick_gelu"):
        return Activation(True, f"{arch} config")
    if tag is not None:
        return Activation(bool((tag_cfg or {}).get("quick_gelu")), f"open_clip pretrained tag {tag!r}")
    declared = _open_clip_config_beside(weights_path)
    if declared is not None:
        return Activation(declared, f"{OPEN_CLIP_CONFIG_NAME} beside the weights")
    return Activation(False, f"{arch} default", by_default=True)


def _switch_hint(builtin: Optional[str]) -> str:
    """How to get QuickGELU for local weights of a named architecture OpenAI released (else "")."""
    oc = _openclip()
    if not builtin or "openai" not in oc.list_pretrained_tags_by_model(builtin):
        return ""
    variant = f"{builtin}-quickgelu"
    alternative = f" or --backbone {variant}" if variant in oc.list_models() else ""
    return f"; the weights carry no activation hint: if they are OpenAI's, pass --quick-gelu{alternative}"


# ----------------------------------------------------------------------------------------- weights
def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in zf.namelist())


def load_state_dict(path: Path, trust_pickle: bool = False) -> Tuple[Dict[str, torch.Tensor], bool]:
    """Read a weights file; returns ``(state_dict, is_openai_jit)``.

    safetensors are read directly; an OpenAI JIT archive through ``torch.jit.load`` (TorchScript, not the
    Python unpickler); anything else with ``torch.load(weights_only=True)``, falling back to full
    unpickling only when ``trust_pickle`` is set.
    """
    path = Path(path)
    if not path.is_file():
        raise VLPromptError(f"weights file not found: {path} (check --pretrained)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), False
        except Exception as exc:  # safetensors raises several error types for corrupt headers
            raise VLPromptError(f"cannot read safetensors file {path}: {exc}") from None
    if _is_torchscript(path):
        module = torch.jit.load(str(path), map_location="cpu")
        # non-persistent mask buffers are not weights (open_clip rebuilds them)
        return {k: v for k, v in module.state_dict().items() if not k.endswith("attn_mask")}, True
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_pickle:
            raise VLPromptError(
                f"{path} needs full unpickling, which can run arbitrary code; re-save it as safetensors, "
                "or pass --trust-pickle if you trust its source"
            ) from None
        log.warning("fully unpickling %s (--trust-pickle): %s", path, str(exc).splitlines()[0])
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError) as exc:
        raise VLPromptError(f"cannot read weights file {path}: {str(exc).splitlines()[0]}") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise VLPromptError(f"{path} does not hold a state dict of tensors")
    if obj and next(iter(obj)).startswith("module."):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj, False


def find_weights_in_dir(directory: Path) -> Path:
    for name in PREFERRED_WEIGHT_NAMES:
        if (directory / name).is_file():
            return directory / name
    files = sorted(p for p in directory.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise VLPromptError(f"no weights file ({', '.join(WEIGHT_SUFFIXES)}) in --pretrained directory {directory}")
    if len(files) > 1:
        names = ", ".join(p.name for p in files[:4]) + (", ..." if len(files) > 4 else "")
        raise VLPromptError(
            f"--pretrained directory {directory} holds {len(files)} weights files ({names}); "
            "pass the file to use as --pretrained"
        )
    return files[0]


def _host_reachable(url: str) -> bool:
    host = urlparse(url).hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=NETWORK_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _cached_hub_file(repo_id: str, filename: str) -> Optional[str]:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for candidate in [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]:
        hit = try_to_load_from_cache(repo_id, candidate)
        if isinstance(hit, str):
            return hit
    return None


def fetch_tag(model_name: str, tag: str, pcfg: Dict) -> Path:
    """Return the local path of an open_clip pretrained tag, downloading it only when reachable."""
    hub = pcfg.get("hf_hub", "")
    url = pcfg.get("url", "")
    if hub:
        repo_id, filename = os.path.split(hub)  # open_clip: "org/repo/" (default file) or "org/repo/file"
        cached = _cached_hub_file(repo_id, filename)
        if cached:
            return Path(cached)
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    else:
        endpoint = url
    hint = (
        "download the weights on a machine with network and pass the local folder or file: "
        f"--backbone {model_name} --pretrained /path/to/open_clip_pytorch_model.bin"
    )
    if pcfg.get("quick_gelu"):  # a bare weights file says nothing about the activation: ask for it
        hint += " --quick-gelu"
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise VLPromptError(f"pretrained tag {tag!r} for {model_name} is not cached and HF_HUB_OFFLINE is set; {hint}")
    if not _host_reachable(endpoint):
        raise VLPromptError(
            f"cannot download pretrained tag {tag!r} for {model_name}: {urlparse(endpoint).hostname} is unreachable "
            f"(offline?); {hint}"
        )
    try:
        return Path(_openclip().download_pretrained(pcfg))
    except Exception as exc:  # network / hub errors come in many types
        raise VLPromptError(f"downloading pretrained tag {tag!r} for {model_name} failed: {exc}; {hint}") from None


def _preprocess_cfg(pcfg: Optional[Dict], weights_path: Optional[Path]) -> Dict:
    """The image mean/std the weights were trained with: the open_clip tag's, else ``preprocess_cfg`` of an
    ``open_clip_config.json`` beside the weights ({} when neither says)."""
    if pcfg:
        return {k: tuple(pcfg[k]) for k in ("mean", "std") if k in pcfg}
    path = Path(weights_path).parent / OPEN_CLIP_CONFIG_NAME if weights_path is not None else None
    if path is None or not path.is_file():
        return {}
    try:
        cfg = json.loads(path.read_text()).get("preprocess_cfg") or {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    return {k: tuple(cfg[k]) for k in ("mean", "std") if k in cfg} if isinstance(cfg, dict) else {}


def _load_into(model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str, backbone: str) -> None:
    for key in OPENAI_JIT_ONLY_KEYS:
        state.pop(key, None)
    for key in [k for k in state if k.endswith("attn_mask")]:  # masks are rebuilt, never weights
        state.pop(key)
    if "logit_scale" in state and state["logit_scale"].ndim != model.logit_scale.ndim:
        state["logit_scale"] = state["logit_scale"].reshape(model.logit_scale.shape)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise VLPromptError(
            f"weights {source} do not fit --backbone {backbone}: {detail}; pass the matching --backbone"
        )
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


def load_clip(
    backbone: str = "toy",
    pretrained: Optional[str] = None,
    trust_pickle: bool = False,
    quick_gelu: Optional[bool] = None,
    quick_gelu_reason: Optional[str] = None,
):
    """Build the frozen fp32 open_clip model for ``--backbone``/``--pretrained``.

    ``quick_gelu`` forces the activation (None: decided by :func:`resolve_activation`); ``quick_gelu_reason``
    says why the caller forces it (default: the ``--quick-gelu`` / ``--no-quick-gelu`` flag). The activation
    used is logged as one line (a warning, with how to switch, when only the architecture's default decided
    for local weights of an architecture OpenAI released).
    Returns ``(model, BackboneSpec)``; the model is in eval mode with no parameter requiring grad.
    """
    config, builtin = resolve_config(backbone)
    source = RANDOM_WEIGHTS
    weights_path: Optional[Path] = None
    openai_jit = False
    state: Optional[Dict[str, torch.Tensor]] = None
    tag: Optional[str] = None
    pcfg: Optional[Dict] = None
    hf_dir: Optional[Path] = None

    if pretrained is None and hf_clip.is_hf_clip_dir(Path(backbone).expanduser()):
        pretrained = backbone  # a CLIPModel folder as --backbone brings its own weights
    if pretrained is None:
        if backbone == "toy":
            from vlprompt.toy.model import TOY_WEIGHTS_PATH

            weights_path, source = Path(TOY_WEIGHTS_PATH), "embedded"
        elif builtin and "openai" in _openclip().list_pretrained_tags_by_model(builtin):
            pretrained = "openai"
        else:
            raise VLPromptError(
                f"--pretrained is required for --backbone {backbone}: an open_clip tag, a local weights file or "
                "directory, or `none` for random weights"
            )
    if pretrained is not None and pretrained.lower() != RANDOM_WEIGHTS:
        local = Path(pretrained).expanduser()
        if hf_clip.is_hf_clip_dir(local):
            _check_hf_architecture(local, config, backbone)
            hf_dir, weights_path = local, find_weights_in_dir(local)
        elif local.is_dir():
            weights_path = find_weights_in_dir(local)
        elif local.is_file():
            weights_path = local
        elif builtin and _openclip().get_pretrained_cfg(builtin, pretrained):
            tag, pcfg = pretrained, _openclip().get_pretrained_cfg(builtin, pretrained)
            weights_path = fetch_tag(builtin, pretrained, pcfg)
        elif os.sep in pretrained or Path(pretrained).suffix in WEIGHT_SUFFIXES:
            raise VLPromptError(f"--pretrained file not found: {local}")
        else:
            tags = _openclip().list_pretrained_tags_by_model(builtin) if builtin else []
            choices = f"known tags for {builtin}: {', '.join(tags)}" if tags else "no open_clip tags for this backbone"
            raise VLPromptError(
                f"--pretrained {pretrained!r} is neither a local file/directory nor a tag ({choices}); "
                "or pass `none` for random weights"
            )
        source = source if source == "embedded" else str(pretrained)
    if weights_path is not None:
        state, openai_jit = load_state_dict(weights_path, trust_pickle=trust_pickle)
    if hf_dir is not None:
        state = hf_clip.hf_clip_state_dict(state, config, str(weights_path))
        if quick_gelu is None:
            hf_act = hf_clip.hf_clip_config(hf_dir)["quick_gelu"]
            quick_gelu, quick_gelu_reason = hf_act, f"hidden_act in {hf_dir / hf_clip.HF_CONFIG_NAME}"

    act = resolve_activation(
        config,
        builtin or backbone,
        override=quick_gelu,
        override_reason=quick_gelu_reason,
        openai_jit=openai_jit,
        state_keys=state or (),
        tag=tag,
        tag_cfg=pcfg,
        weights_path=weights_path,
    )
    config = {**config, "quick_gelu": act.quick_gelu}
    hint = _switch_hint(builtin) if act.by_default and weights_path is not None else ""
    (log.warning if hint else log.info)("activation: %s (%s)%s", activation_name(act.quick_gelu), act.reason, hint)

    if openai_jit:
        oc = _openclip()
        model = oc.model.build_model_from_openai_state_dict(state, quick_gelu=act.quick_gelu, cast_dtype=None).float()
    elif state is not None:
        model = build_model(config)
        _load_into(model, state, str(weights_path), backbone)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            model = build_model(config)
        log.warning("backbone %s uses random weights (--pretrained none, seed %d)", backbone, RANDOM_WEIGHTS_SEED)
    preprocess = _preprocess_cfg(pcfg, weights_path)
    if preprocess:  # SigLIP's weights expect mean = std = 0.5, not CLIP's statistics
        model.visual.preprocess_cfg = {**(getattr(model.visual, "preprocess_cfg", None) or {}), **preprocess}
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    spec = BackboneSpec(
        backbone=backbone,
        pretrained=source,
        config=config,
        quick_gelu=act.quick_gelu,
        activation_reason=act.reason,
        weights_path=weights_path,
    )
    return model, spec
