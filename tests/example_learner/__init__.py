"""The example learner of CONTRIBUTING.md ("Checklist: add a learner"), as one package like a built-in one:
``config`` declares it (torch-free: config, preset, published numbers, recipe, reference key map) and ``model``
implements it. conftest.py imports ``config``, so the composition matrix (tests/test_composition.py) picks it up —
every add-on x it — without any list being edited."""
