"""answer-distill: reasoning-model answers → SFT datasets (arXiv 2504.09639)."""

__version__ = "0.1.0"
