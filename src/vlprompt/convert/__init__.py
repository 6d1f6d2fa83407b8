"""Convert reference (Dassl) checkpoints into vlprompt tensors.

The reference trainers — CoOp / CoCoOp (KaiyangZhou/CoOp), KgCoOp, MaPLe / IVLP / VPT
(multimodal-prompt-learning), PromptSRC, DePT's ExtrasLinearProbe* trainers, Nemesis' CoOpNemesis and
RESTORE's MaPLe_FSA — save ``<output>/<module>/model.pth.tar-N`` with Dassl. Converting one is three steps:

.. code-block:: python

    from vlprompt.convert import infer_method, read_reference_checkpoint, to_vlprompt

    ref = read_reference_checkpoint("output/.../MultiModalPromptLearner")  # file, module or run folder
    method = infer_method(ref.state_dict)  # or the user's --method ("maple", "kgcoop+dept", ...)
    converted = to_vlprompt(method, ref.state_dict)
    converted.tensors  # {"learner.ctx": ..., "learner.text_deep": ..., "learner.couplings.0.weight": ...}

API (all errors a user can cause raise :class:`~vlprompt.errors.VLPromptError` with one line):

* :func:`load_checkpoint(path, trust_pickle=False) <vlprompt.convert.unpickler.load_checkpoint>` -> dict:
  any ``torch.save`` file read by a restricted unpickler that executes nothing (optimizer and scheduler
  objects become :class:`~vlprompt.convert.unpickler.InertObject` s; other globals are refused unless
  ``trust_pickle``).
* :func:`read_reference_checkpoint(path, trust_pickle=False) <vlprompt.convert.dassl.read_reference_checkpoint>`
  -> :class:`~vlprompt.convert.dassl.ReferenceCheckpoint` (``state_dict``, ``epoch``, ``source``,
  ``module``); ``path`` is a ``model.pth.tar-N`` file, its module folder (the file its ``checkpoint``
  index names, else the highest N), a run's output folder holding one module folder, or a
  ``.safetensors`` file keyed by the reference's names.
* :func:`to_vlprompt(method, state_dict) <vlprompt.convert.keymap.to_vlprompt>` ->
  :class:`~vlprompt.convert.keymap.ConvertedTensors` (``tensors`` in vlprompt's task state-dict names,
  ``dropped_class_buffers``, ``unused``, ``frozen`` CLIP tensors by reference name, ``derived``).
* :func:`infer_method(state_dict) <vlprompt.convert.keymap.infer_method>` -> method string;
  :func:`canonical_method`; :func:`clip_name` (a frozen reference name's OpenAI CLIP name);
  :func:`trainers` (method -> the reference trainer's table).
* :func:`convert_checkpoint(checkpoint, out, method, dataset, ...) <vlprompt.convert.runs.convert_checkpoint>`
  -> :class:`~vlprompt.convert.runs.Conversion`: the whole ``vlprompt convert``: a run directory that
  ``eval`` / ``corrupt`` / ``analyze`` / ``train --init-from`` accept (settings read from the tensor shapes,
  label space from the data flags, frozen CLIP tensors checked against the backbone).
* :func:`load_initial_values(task, source) <vlprompt.convert.initial.load_initial_values>`: ``--init-from``,
  a task's starting values from a run directory, a tensor file (vlprompt's or the reference's names) or a
  reference checkpoint.
"""

import importlib

#: the public names, each imported from its module on first use (so ``vlprompt.convert.formats``, which the command
#: line reads for its choices, loads no model library)
_LAZY = {
    **dict.fromkeys(("ReferenceCheckpoint", "find_checkpoint", "read_reference_checkpoint"), "vlprompt.convert.dassl"),
    **dict.fromkeys(("InitialValues", "load_initial_values"), "vlprompt.convert.initial"),
    **dict.fromkeys(
        ("ConvertedTensors", "canonical_method", "clip_name", "infer_method", "to_vlprompt", "trainers"),
        "vlprompt.convert.keymap",
    ),
    **dict.fromkeys(("Conversion", "convert_checkpoint"), "vlprompt.convert.runs"),
    **dict.fromkeys(("InertObject", "load_checkpoint"), "vlprompt.convert.unpickler"),
}

__all__ = [
    "trainers",
    "Conversion",
    "ConvertedTensors",
    "InertObject",
    "InitialValues",
    "ReferenceCheckpoint",
    "canonical_method",
    "clip_name",
    "convert_checkpoint",
    "find_checkpoint",
    "infer_method",
    "load_checkpoint",
    "load_initial_values",
    "read_reference_checkpoint",
    "to_vlprompt",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vlprompt.convert' has no attribute {name!r}")
