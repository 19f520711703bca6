"""The next token from a sequence's logits, in numpy, for the two commonest requests: greedy
(temperature 0) and plain temperature sampling (``top_p`` 1, no grammar).

Why not llama.cpp's sampler chain for these: it copies every logit into a candidates array
and, for temperature sampling, normalises all of them, for each sequence at each step. With
Gemma 3's 262,144-token vocabulary a profile of the embedded engine under 8 streams at
temperature 1 had 16% of its decode loop in ``llama_sampler_sample``; measured per token on the
development machine (2 cores): greedy 0.28 ms there against 0.02 ms for ``argmax`` here,
temperature sampling 2.1 ms against 0.25 ms here (the exponentials in one vectorised pass,
then the draw found by block sums, not a full cumulative sum). Anything else (``top_p`` < 1, a
grammar) keeps llama.cpp's chain.

Both draw from exactly the distribution the chain would: ``softmax(logits / temperature)``.
A request's seed seeds its own generator, so a seeded request is reproducible.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BLOCK = 1024  # logits per block of the two-level search

Logits = npt.NDArray[np.float32]


class Greedy:
    """The likeliest token (the first of equals, as llama.cpp's greedy sampler).

    >>> Greedy()(np.array([0.1, 2.0, 2.0, -1.0], dtype=np.float32))
    1
    """

    def __call__(self, logits: Logits) -> int:
        return int(np.argmax(logits))


class Temperature:
    """A draw from ``softmax(logits / temperature)``.

    >>> s = Temperature(1.0, seed=7)
    >>> s(np.array([0.0, 50.0, 0.0], dtype=np.float32))
    1
    """

    def __init__(self, temperature: float, seed: int | None) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be > 0; use Greedy")
        self.inverse = np.float32(1.0 / temperature)
        self.rng = np.random.default_rng(seed)
        self._buf: Logits | None = None

    def __call__(self, logits: Logits) -> int:
        buf = self._buf
        if buf is None or buf.shape != logits.shape:
            buf = self._buf = np.empty_like(logits, dtype=np.float32)
        np.multiply(logits, self.inverse, out=buf)
        buf -= buf.max()
        np.exp(buf, out=buf)
        starts = np.arange(0, buf.size, BLOCK)
        blocks = np.cumsum(np.add.reduceat(buf, starts), dtype=np.float64)
        target = self.rng.random() * blocks[-1]
        block = min(int(np.searchsorted(blocks, target, side="right")), len(blocks) - 1)
        before = blocks[block - 1] if block else 0.0
        start = block * BLOCK
        within = np.cumsum(buf[start:start + BLOCK], dtype=np.float64)
        index = int(np.searchsorted(within, target - before, side="right"))
        return start + min(index, len(within) - 1)


NumpySampler = Greedy | Temperature


def numpy_sampler(temperature: float, top_p: float, seed: int | None,
                  grammar: str | None) -> NumpySampler | None:
    """The numpy sampler for these settings, or ``None`` where llama.cpp's chain is needed."""
    if grammar is not None:
        return None
    if temperature <= 0.0:
        return Greedy()
    if top_p < 1.0:
        return None
    return Temperature(temperature, seed)
