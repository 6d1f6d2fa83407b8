"""RESTORE (Yang et al., ECCV 2024): feature-shift consistency for prompted towers.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` and ``code_formulation`` and ``paper_formulation`` implement it."""
