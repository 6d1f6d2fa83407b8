"""CoOp (Zhou et al., IJCV 2022): learned context vectors in the class prompts.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
