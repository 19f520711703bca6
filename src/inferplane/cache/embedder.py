"""Where the semantic cache's vectors come from: the encoder shipped with the gateway (in this
process, off the event loop), or a model of this gateway that serves embeddings
(``semantic.embeddings``), asked through the gateway's own requests: routed like any request
and recorded in the ledger for the client request that caused them. Either way the rows come
back L2-normalised, so a dot product is a cosine similarity."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from inferplane.embedding import TextEncoder
from inferplane.protocol.types import Embeddings, GenerationRequest
from inferplane.tenancy.records import Principal

Rows = npt.NDArray[np.float32]

EMBEDDING = "cache-embedding"  # the ledger's ``purpose`` of the cache's own embeddings
JUDGING = "cache-judge"  # ... and of its judge model's verdicts


@dataclass(frozen=True, slots=True)
class Caller:
    """The client request a cache's own request is made for: whose tenant and key it is
    recorded under, and its id."""

    principal: Principal
    request_id: str


class OwnRequests(Protocol):
    """The gateway's own requests (``inferplane.own_requests``): routed like a client's, one
    ledger record each, passing no admission."""

    async def embed(self, model: str, texts: list[str], caller: Caller | None,
                    purpose: str) -> Embeddings: ...

    async def answer(self, req: GenerationRequest, caller: Caller | None,
                     purpose: str) -> str: ...


class Embedder(Protocol):
    async def embed(self, texts: list[str], caller: Caller | None = None) -> Rows: ...


class LocalEmbedder:
    """A :class:`TextEncoder` in this process (thread-safe), run in a worker thread."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    async def embed(self, texts: list[str], caller: Caller | None = None) -> Rows:
        return await asyncio.to_thread(self.encoder.encode, texts)


def normalised(vectors: Sequence[Sequence[float]]) -> Rows:
    """``vectors`` as unit float32 rows (a zero row stays zero).

    >>> normalised([[3.0, 4.0], [0.0, 0.0]]).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1, norms)).astype(np.float32)


class ModelEmbedder:
    """A model of this gateway that serves embeddings, asked through its own requests."""

    def __init__(self, model: str, own: OwnRequests) -> None:
        self.model = model
        self.own = own

    async def embed(self, texts: list[str], caller: Caller | None = None) -> Rows:
        return normalised((await self.own.embed(self.model, texts, caller, EMBEDDING)).vectors)
