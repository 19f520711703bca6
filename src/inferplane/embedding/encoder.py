"""What every text encoder offers: texts in, unit vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt


class TextEncoder(Protocol):
    """Maps texts to L2-normalised float32 rows, so a dot product is a cosine similarity."""

    @property
    def name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """An array of shape ``(len(texts), dimensions)``; thread-safe."""
        ...
