"""Zero-shot CLIP (Radford et al., ICML 2021): hand-crafted prompts, nothing trained.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
