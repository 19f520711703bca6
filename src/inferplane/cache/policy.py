"""Whether a request reads the cache, whether its answer may be kept, and what the client is
told (pure).

- Only deterministic requests (``temperature`` 0, or a ``seed``) use the cache, unless the
  model sets ``deterministic_only: false`` or the request sends ``x-inferplane-cache: force``
  (then only requests that also force it, or are deterministic, read what it kept: a
  non-deterministic request without ``force`` neither reads nor stores).
- ``Cache-Control: no-cache``: the answer is not read from the cache, but it may refresh it.
  ``Cache-Control: no-store``: the cache is neither read nor written.
- An answer is kept only when it came back whole with status 200 and ended by itself
  (``stop``) or at its token limit (``length``): never an error, a stream cut by the upstream
  or left by the client, a content-filtered answer, or an answer with tool calls (their
  results are the client's to send).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from inferplane.config import CacheConfig
from inferplane.protocol.types import SamplingParams

Outcome = Literal["hit-exact", "hit-semantic", "miss", "bypass"]
HIT: Final = "hit-exact"  # answered from the cache
SEMANTIC_HIT: Final = "hit-semantic"  # answered from the cache, for a paraphrase
MISS: Final = "miss"  # looked up, not found: served upstream
BYPASS: Final = "bypass"  # the cache was not read (not cacheable, or the client said so)
OUTCOMES: tuple[Outcome, ...] = (HIT, SEMANTIC_HIT, MISS, BYPASS)

HEADER = "x-inferplane-cache"  # the response's outcome; on a request, "force" opts in
FORCE = "force"
VERIFY = "verify"  # a would-be semantic hit goes upstream, and the two answers are compared
STORABLE_FINISH = frozenset({"stop", "length"})


@dataclass(frozen=True, slots=True)
class Directives:
    """What the client's headers ask of the cache."""

    no_cache: bool = False  # do not answer from the cache (it may still keep the answer)
    no_store: bool = False  # leave the cache alone
    force: bool = False  # cache this request even though it is not deterministic
    verify: bool = False  # semantic cache: check the kept answer against the upstream's


@dataclass(frozen=True, slots=True)
class Decision:
    read: bool  # look the answer up
    store: bool  # keep the answer, if it is storable


NEITHER = Decision(read=False, store=False)


def directives(headers: Mapping[str, str]) -> Directives:
    """The cache directives in ``headers`` (names lower-case, as HTTP servers give them).

    >>> directives({"cache-control": "No-Cache, max-age=0"})
    Directives(no_cache=True, no_store=False, force=False, verify=False)
    >>> directives({"cache-control": "no-store", "x-inferplane-cache": " Force"})
    Directives(no_cache=False, no_store=True, force=True, verify=False)
    >>> directives({"x-inferplane-cache": "verify, force"})
    Directives(no_cache=False, no_store=False, force=True, verify=True)
    """
    control = headers.get("cache-control") or ""
    tokens = {part.split("=", 1)[0].strip().lower() for part in control.split(",")}
    asked = {part.strip().lower() for part in (headers.get(HEADER) or "").split(",")}
    return Directives("no-cache" in tokens, "no-store" in tokens, FORCE in asked,
                      VERIFY in asked)


def deterministic(params: SamplingParams) -> bool:
    """Greedy decoding or a fixed seed: the same request gives the same answer.

    >>> deterministic(SamplingParams(temperature=0.0)), deterministic(SamplingParams(seed=7))
    (True, True)
    >>> deterministic(SamplingParams(temperature=0.7))
    False
    """
    return params.temperature == 0 or params.seed is not None


def decide(settings: CacheConfig, params: SamplingParams, asked: Directives) -> Decision:
    """Whether a request of a model with ``settings`` reads the cache and may write to it."""
    if not (settings.exact or settings.semantic.enabled) or asked.no_store:
        return NEITHER
    if settings.deterministic_only and not asked.force and not deterministic(params):
        return NEITHER
    return Decision(read=not asked.no_cache, store=True)


def storable(status: int, finish_reason: str | None, tool_calls: bool) -> bool:
    """Whether an answer may be kept: successful, finished (``finish_reason`` None: it never
    did), ended by itself or at its limit, and without tool calls.

    >>> storable(200, "stop", False), storable(200, "length", False)
    (True, True)
    >>> storable(200, "tool_calls", True), storable(499, None, False), storable(502, "stop", False)
    (False, False, False)
    """
    return status == 200 and finish_reason in STORABLE_FINISH and not tool_calls
