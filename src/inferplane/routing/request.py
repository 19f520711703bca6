"""What the router needs to know about one request, read off the canonical request: its size,
its prefix, and the limits its client and key set. Pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from inferplane.errors import InvalidRequest
from inferplane.metering.tokens import estimate_tokens
from inferplane.protocol.types import EmbeddingRequest, Endpoint, GenerationRequest, Wire
from inferplane.routing.policy import PREFIX_CHARS, prefix_key

RESIDENCY_HEADER = "x-inferplane-residency"
MAX_PRICE_HEADER = "x-inferplane-max-price-usd"
# On a response: the version that served it. On a request: serve it with this version, whatever
# its stage (an evaluation before approval; needs the approve or admin scope).
VERSION_HEADER = "x-inferplane-version"
DEFAULT_OUTPUT_TOKENS = 256  # for cost estimates when the request sets no limit


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What routing needs to know about one request."""

    model: str
    endpoint: Endpoint
    needs: frozenset[str] = frozenset()  # optional features (GenerationRequest.needs)
    extensions_wire: Wire | None = None  # the protocol its vendor extensions are written in
    prompt_tokens: int = 0
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    prefix_key: int | None = None
    residency: frozenset[str] | None = None  # from the request (header), on top of the alias's
    key_residency: frozenset[str] | None = None  # from the API key, on top of both
    max_price_usd: float | None = None
    version: str | None = None  # pinned: only this version's deployments, no fallbacks
    sticky_key: str = ""  # who sends it, for a canary's split (governance/canary.py); "": none


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The limits a request carries on top of its model's: where it may be served (the
    client's and its API key's) and the most it may cost."""

    residency: frozenset[str] | None = None
    max_price_usd: float | None = None
    key_residency: frozenset[str] | None = None


def client_limits(headers: Mapping[str, str], key_residency: Iterable[str] | None = None
                  ) -> ClientLimits:
    """Where the client (its headers) and its API key allow a request to be served, and the
    most it may cost."""
    return ClientLimits(residency=_residency(headers.get(RESIDENCY_HEADER)),
                        max_price_usd=_max_price(headers.get(MAX_PRICE_HEADER)),
                        key_residency=None if key_residency is None else frozenset(key_residency))


def _residency(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    areas = frozenset(v.strip().lower() for v in value.split(",") if v.strip())
    if not areas:
        raise InvalidRequest(f"The {RESIDENCY_HEADER} header names no region or jurisdiction.",
                             param=RESIDENCY_HEADER)
    return areas


def _max_price(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        price = float(value)
    except ValueError:
        price = math.nan
    if not (math.isfinite(price) and price > 0):
        raise InvalidRequest(f"The {MAX_PRICE_HEADER} header must be a positive number of US "
                             "dollars.", param=MAX_PRICE_HEADER)
    return price


def route_request(req: GenerationRequest, limits: ClientLimits, sticky_key: str = "",
                  version: str | None = None) -> RouteRequest:
    """A generation's size (its prompt estimated from its characters), prefix, limits, sticky
    key, and the version it is pinned to, if any."""
    texts = [req.prompt] if req.prompt is not None else [m.content for m in req.messages]
    return RouteRequest(
        model=req.model, endpoint=req.endpoint, needs=req.needs(),
        extensions_wire=req.extensions_wire if req.extensions else None,
        prompt_tokens=_estimate(texts),
        output_tokens=req.params.max_tokens or DEFAULT_OUTPUT_TOKENS,
        prefix_key=prefix_key(leading(texts, PREFIX_CHARS)),
        residency=limits.residency, max_price_usd=limits.max_price_usd,
        key_residency=limits.key_residency, sticky_key=sticky_key, version=version,
    )


def embedding_route_request(req: EmbeddingRequest, key_residency: Iterable[str] | None = None,
                            sticky_key: str = "") -> RouteRequest:
    """An embedding request: its inputs' size, where its API key allows it to be served, and
    its sticky key; it generates nothing."""
    return RouteRequest(req.model, "embeddings", output_tokens=0,
                        prompt_tokens=_estimate(req.inputs),
                        key_residency=None if key_residency is None else frozenset(key_residency),
                        sticky_key=sticky_key)


def _estimate(texts: Iterable[str]) -> int:
    return estimate_tokens(sum(map(len, texts)))


def leading(texts: list[str], chars: int) -> str:
    """The first ``chars`` characters of the texts joined by newlines, without joining a long
    prompt whole on every request.

    >>> leading(["ab", "cd", "ef"], 4) == "ab" + chr(10) + "c"
    True
    """
    parts: list[str] = []
    size = 0
    for text in texts:
        parts.append(text)
        size += len(text) + 1
        if size >= chars:
            break
    return "\n".join(parts)[:chars]

