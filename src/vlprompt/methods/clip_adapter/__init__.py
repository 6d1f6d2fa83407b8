"""CLIP-Adapter (Gao et al., IJCV 2023): a residual bottleneck MLP on the frozen features.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
