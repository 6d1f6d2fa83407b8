"""KgCoOp's knowledge-guided consistency (Yao et al., CVPR 2023) as an add-on.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
