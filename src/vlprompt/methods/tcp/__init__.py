"""TCP (Yao et al., CVPR 2024): textual-based class-aware prompts.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
