"""PromptSRC's self-regulating constraints (Khattak et al., ICCV 2023) as an add-on.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
