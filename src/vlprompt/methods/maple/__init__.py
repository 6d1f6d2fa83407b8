"""MaPLe (Khattak et al., CVPR 2023): multi-modal prompts coupled from text to vision.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
