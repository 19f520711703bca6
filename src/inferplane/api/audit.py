"""The audit log in the admin API (``/admin/v1/audit/...``, ``viewer`` scope): the signed
checkpoint, inclusion and consistency proofs in RFC 9162's terms (hashes in base64), and the
entries with the exact bytes their leaves hash, so anyone can verify them independently
(docs/audit.md)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from inferplane.api.admin_deps import Viewer, gateway_of

router = APIRouter(prefix="/v1/audit", tags=["audit"])

_INDEX = Query(ge=0, le=2**62)
B64 = "base64 of a 32-byte SHA-256 hash"


class CheckpointOut(BaseModel):
    checkpoint: str = Field(description="The C2SP signed note: origin, tree size, base64 root "
                                        "hash, a blank line, then '— <key name> <signature>'.")
    origin: str
    tree_size: int
    root_hash: str = Field(description=B64)
    verifier_key: str = Field(description="The signer's C2SP verifier key: "
                                          "<name>+<hex key id>+<base64(0x01 || public key)>.")


class InclusionOut(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || leaf_input), " + B64)
    root_hash: str = Field(description=B64)
    inclusion_path: list[str] = Field(description="RFC 9162 §2.1.3.1 PATH(leaf_index, "
                                                  "D[tree_size]), leaf side first, " + B64)


class ConsistencyOut(BaseModel):
    tree_size_1: int
    tree_size_2: int
    root_hash_1: str = Field(description=B64)
    root_hash_2: str = Field(description=B64)
    consistency_path: list[str] = Field(description="RFC 9162 §2.1.4.1 PROOF(tree_size_1, "
                                                    "D[tree_size_2]), " + B64)


class EntryOut(BaseModel):
    index: int
    leaf_input: str = Field(description="base64 of the entry's bytes, which the leaf hashes")
    leaf_hash: str = Field(description=B64)
    ts: float
    kind: str
    actor: str
    prev: str = Field(description="the root hash of the tree before this entry, " + B64)
    data: dict[str, object]


class EntriesOut(BaseModel):
    tree_size: int
    entries: list[EntryOut]


@router.get("/checkpoint", response_model=CheckpointOut)
async def checkpoint(request: Request, _p: Viewer) -> CheckpointOut:
    """A signed checkpoint of the current tree head, issued now (and kept)."""
    log = gateway_of(request).audit
    signed = await asyncio.to_thread(log.checkpoint)
    cp = signed.checkpoint
    verifier = log.verifier
    assert verifier is not None  # checkpoint() signed it
    return CheckpointOut(checkpoint=signed.text, origin=cp.origin, tree_size=cp.size,
                         root_hash=signed.body.split("\n")[2], verifier_key=verifier.text())


@router.get("/proof/inclusion", response_model=InclusionOut)
async def inclusion(request: Request, _p: Viewer, leaf: Annotated[int, _INDEX],
                    size: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> InclusionOut:
    """That entry ``leaf`` is in the tree of ``size`` entries (default: the current tree)."""
    log = gateway_of(request).audit
    tree_size = size if size is not None else (await asyncio.to_thread(log.head)).size
    return InclusionOut(**await asyncio.to_thread(log.inclusion, leaf, tree_size))


@router.get("/proof/consistency", response_model=ConsistencyOut)
async def consistency(request: Request, _p: Viewer,
                      first: Annotated[int, Query(alias="from", ge=0, le=2**62)],
                      to: Annotated[int | None, Query(ge=0, le=2**62)] = None,
                      ) -> ConsistencyOut:
    """That the tree of ``from`` entries is a prefix of the tree of ``to`` (default: the
    current tree)."""
    log = gateway_of(request).audit
    second = to if to is not None else (await asyncio.to_thread(log.head)).size
    return ConsistencyOut(**await asyncio.to_thread(log.consistency, first, second))


@router.get("/entries", response_model=EntriesOut)
async def entries(request: Request, _p: Viewer, start: Annotated[int, _INDEX] = 0,
                  end: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> EntriesOut:
    """Entries ``start`` to ``end - 1`` (at most 1000; default: up to 100 from ``start``)."""
    log = gateway_of(request).audit
    size = (await asyncio.to_thread(log.head)).size
    stop = min(end if end is not None else start + 100, size, start + 1000)
    found = [] if stop <= start else await asyncio.to_thread(log.entries, start, stop)
    return EntriesOut(tree_size=size, entries=[EntryOut(**e) for e in found])
