"""Starting values for training (``--init-from RUN|FILE``): warm start from given tensors instead of the method's
random or word initialisation.

The source is read as vlprompt tensors (task state-dict names, ``learner.ctx``, ...):

* a trained or converted run directory (``weights.safetensors`` + ``weights.json``);
* a ``.safetensors`` file (or a plain pickled state dict, read by the restricted unpickler) keyed by vlprompt's
  names, or by a reference trainer's names (``ctx``, ``prompt_learner.compound_prompts_text.0``, ...), which
  :func:`~vlprompt.convert.keymap.to_vlprompt` renames for the method being trained;
* a reference (Dassl) checkpoint, ``model.pth.tar-N`` or its folder.

Every given tensor must exist in the task with the same shape (else one :class:`~vlprompt.errors.VLPromptError`
line naming them); tensors the source lacks keep their fresh initialisation and are reported — RESTORE's
calibration ratios, which the reference writes with its initial tensors, then keep the configuration's
``restore.text_calib_r`` / ``restore.vis_calib_r``. A run is identified by the source's content
(:func:`vlprompt.fileio.content_sha256`), not only its path: changed starting values are another run. Values are cast
to the task's dtype. After loading, add-ons re-capture state derived from the starting prompts
(:meth:`~vlprompt.addons.base.AddOn.on_initial_values`: RESTORE's initial Gram norms, which the reference
MaPLe_FSA captures at its first forward, after its weights were loaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import torch

from vlprompt.errors import VLPromptError

#: prefixes of vlprompt's task state-dict names
VLPROMPT_PREFIXES = ("learner.", "addons.")
_SHOWN = 4


@dataclass
class InitialValues:
    """What :func:`load_initial_values` set: the names loaded and those left at their fresh initialisation."""

    source: Path
    loaded: List[str]
    kept: List[str] = field(default_factory=list)

    def describe(self) -> str:
        kept = f"; fresh initialisation kept for {', '.join(self.kept)}" if self.kept else ""
        return f"initial values from {self.source}: {', '.join(self.loaded)}{kept}"


def _names(names) -> str:
    names = list(names)
    return ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")


def read_initial_tensors(source, method: str, trust_pickle: bool = False) -> Dict[str, torch.Tensor]:
    """The tensors of ``source`` in vlprompt's names for ``method`` (see the module doc)."""
    from vlprompt.convert.dassl import read_reference_checkpoint
    from vlprompt.convert.keymap import to_vlprompt
    from vlprompt.engine.weights import WEIGHTS, WEIGHTS_META, load_weights

    path = Path(source)
    if path.is_dir() and ((path / WEIGHTS).is_file() or (path / WEIGHTS_META).is_file()):
        return load_weights(path)[1]
    if not path.exists():
        raise VLPromptError(f"--init-from {path}: no such file or folder; give a run directory or a tensor file")
    state = read_reference_checkpoint(path, trust_pickle=trust_pickle).state_dict
    if state and all(name.startswith(VLPROMPT_PREFIXES) for name in state):
        return dict(state)
    return to_vlprompt(method, state, from_config=True).tensors


def load_initial_values(task, source, trust_pickle: bool = False) -> InitialValues:
    """Set ``task``'s starting values from ``source``; one-line errors for unknown names and wrong shapes."""
    tensors = read_initial_tensors(source, task.method, trust_pickle)
    own = task.release_state_dict()
    unknown = [name for name in tensors if name not in own]
    if unknown:
        raise VLPromptError(
            f"--init-from {source}: {len(unknown)} tensor(s) that method {task.method} does not have "
            f"({_names(unknown)}); is it a run or checkpoint of this method?"
        )
    wrong = [
        f"{name} {list(tensors[name].shape)} there, {list(own[name].shape)} here"
        for name in tensors
        if tuple(tensors[name].shape) != tuple(own[name].shape)
    ]
    if wrong:
        raise VLPromptError(
            f"--init-from {source}: shapes differ ({'; '.join(wrong[:_SHOWN])}); "
            "match the settings that size them (e.g. n_ctx, depth, csc, the label space)"
        )
    with torch.no_grad():
        for name, tensor in tensors.items():
            own[name].copy_(tensor.to(own[name].device, own[name].dtype))
    for addon in task.addons.values():
        addon.on_initial_values()
    return InitialValues(Path(source), sorted(tensors), sorted(set(own) - set(tensors)))
