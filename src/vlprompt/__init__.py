"""vlprompt: composable prompt learning for CLIP-style vision-language models."""

__version__ = "0.1.0"
