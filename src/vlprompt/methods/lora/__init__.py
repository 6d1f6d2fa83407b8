"""CLIP-LoRA (Zanella & Ben Ayed, CVPRW 2024): low-rank updates of both towers' attention.

``config`` declares it (torch-free: config, presets, published numbers, recipes, reference key map);
``model`` implements it."""
