"""Where the semantic cache's vectors come from: the encoder shipped with the gateway (in this
process, off the event loop), or a model of this gateway that serves embeddings
(``semantic.embeddings``), called on its deployments in order until one answers. Either way the
rows come back L2-normalised, so a dot product is a cosine similarity."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from inferplane.embedding import TextEncoder
from inferplane.errors import InferplaneError, ServiceUnavailable
from inferplane.protocol.types import EmbeddingRequest, Embeddings

Rows = npt.NDArray[np.float32]


class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> Rows: ...


class LocalEmbedder:
    """A :class:`TextEncoder` in this process (thread-safe), run in a worker thread."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    async def embed(self, texts: list[str]) -> Rows:
        return await asyncio.to_thread(self.encoder.encode, texts)


class EmbedsText(Protocol):  # providers.base.Provider, as far as this module needs it
    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...


def normalised(vectors: Sequence[Sequence[float]]) -> Rows:
    """``vectors`` as unit float32 rows (a zero row stays zero).

    >>> normalised([[3.0, 4.0], [0.0, 0.0]]).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1, norms)).astype(np.float32)


class DeploymentEmbedder:
    """A model of this gateway that serves embeddings: its deployments' providers, tried in
    order."""

    def __init__(self, model: str, providers: Sequence[EmbedsText]) -> None:
        self.model = model
        self.providers = providers

    async def embed(self, texts: list[str]) -> Rows:
        request = EmbeddingRequest(id=f"semantic-cache-{uuid.uuid4().hex}", model=self.model,
                                   inputs=tuple(texts))
        failure: InferplaneError | None = None
        for provider in self.providers:
            try:
                return normalised((await provider.embed(request)).vectors)
            except InferplaneError as exc:
                failure = exc
        raise failure or ServiceUnavailable(f"no deployment of '{self.model}' to embed with")
