"""Deep language prompting (LPT) and IVLP, as in the MaPLe repository (Khattak et al., CVPR 2023).

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
