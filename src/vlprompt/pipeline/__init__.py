"""The pipeline layer under :mod:`vlprompt.api`: one module per job of a run.

:mod:`~vlprompt.pipeline.identity` (run identity, fingerprints, architecture id) ←
:mod:`~vlprompt.pipeline.records` (``results.json``, ``predictions.csv``, ``weights.json``) ←
:mod:`~vlprompt.pipeline.loading` (data, backbone) ← :mod:`~vlprompt.pipeline.build` (task, feature cache) ←
:mod:`~vlprompt.pipeline.trained` (open a trained run, predict) ← :mod:`~vlprompt.pipeline.training`,
:mod:`~vlprompt.pipeline.zeroshot`, :mod:`~vlprompt.pipeline.evaluation`. Each module imports only those to its
left, and none imports :mod:`vlprompt.api` (the public façade) or :mod:`vlprompt.cli`.
"""
