"""Nemesis (Fu et al., ICLR 2024): normalising the soft-prompt vectors.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
