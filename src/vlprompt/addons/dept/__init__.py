"""DePT (Zhang et al., CVPR 2024): decoupled prompt tuning, a channel-adjusted head and FiLM.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
