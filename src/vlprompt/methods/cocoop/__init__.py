"""CoCoOp (Zhou et al., CVPR 2022): CoOp with an image-conditioned meta-net.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
