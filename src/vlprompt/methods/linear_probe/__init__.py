"""The linear probe of the CoOp repository's lpclip (Zhou et al., IJCV 2022; Radford et al., ICML 2021).

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` and ``logistic`` implement it."""
