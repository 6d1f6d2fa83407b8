"""ProGrad (Zhu et al., ICCV 2023): prompt-aligned gradients.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
