"""The key of a cached answer: everything that changes the answer, nothing that does not (pure).

A key has two halves. The :class:`Scope` says whose and what: the tenant, the model the client
named (and the model it resolves to), and what would serve it (:func:`serving_of`: the model's
deployments and its fallbacks'). :func:`canonical` is the request itself, normalized: messages
(the system prompt among them), prompt, tools, tool choice, response format and every sampling
parameter (max tokens, temperature, top p, stop sequences, seed). The request id, the stream
flag, ``stream_options``, the ``user`` field and the client's protocol are left out, so a
streamed request is answered from a non-streamed entry and an Anthropic client from an OpenAI
client's, and the other way round.

A semantic cache matches within a scope too: :func:`context` is the part of a request a
paraphrase must share (system prompt, tools, response format; ``cache/question.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from inferplane.config import Config, DeploymentConfig
from inferplane.protocol.types import GenerationRequest, Message

KEY_VERSION = 1  # bump when canonical() changes: old entries then never match


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose and what an entry is: entries of one scope never answer another's requests.

    ``tenant`` None is the gateway without API keys (one tenant, the operator's). ``model`` is
    the configured model's name (entries are purged and counted by it), ``alias`` the name the
    client asked for, ``serving`` what would serve it (:func:`serving_of`)."""

    tenant: str | None
    model: str
    alias: str
    serving: str

    def fields(self) -> list[Any]:
        return [KEY_VERSION, self.tenant, self.model, self.alias, self.serving]


@dataclass(frozen=True, slots=True)
class EntryKey:
    """Where an entry is kept: its model and tenant in the clear (to count and purge by), and
    the digest of its scope and request."""

    model: str
    tenant: str | None
    digest: str


def _deployment_identity(d: DeploymentConfig) -> list[Any]:
    """What about a deployment changes its answers: what it is, and its model version."""
    engine = None if d.engine is None else d.engine.model
    return [d.name, d.provider, d.upstream_model, d.base_url, d.api_version, engine,
            d.version_name]


def serving_deployments(config: Config, model: str) -> list[list[DeploymentConfig]]:
    """The deployments that may serve ``model`` (a name or an alias): its own, then each
    fallback's, in order."""
    found = config.resolve_alias(model)
    names = [] if found is None else [found.name, *found.routing.fallbacks]
    return [config.deployments_of(name) for name in names]


def serving_of(config: Config, model: str, held_back: Collection[str] = ()) -> str:
    """What would serve requests for ``model`` now: the deployments of the model and of its
    fallbacks that governance does not hold back (``held_back``: deployment names), with their
    versions. Changing any of them (a new production version, a kill) starts the model's entries
    afresh."""
    identity = [[_deployment_identity(d) for d in group if d.name not in held_back]
                for group in serving_deployments(config, model)]
    return hashlib.sha256(orjson.dumps(identity)).hexdigest()[:32]


def message_fields(m: Message) -> list[Any]:
    """A message as what its answer depends on."""
    return [m.role, m.content, [[c.id, c.name, c.arguments] for c in m.tool_calls],
            m.tool_call_id, m.name]


def sampling(req: GenerationRequest) -> list[Any]:
    """The sampling parameters, floats where the API takes floats (``0`` and ``0.0`` agree)."""
    p = req.params
    return [p.max_tokens, float(p.temperature), float(p.top_p), list(p.stop), p.seed]


def context(req: GenerationRequest) -> list[Any]:
    """The parts of a request that frame its question: system prompts, tools, tool choice,
    response format. Two requests that differ here never share an answer, exact or semantic."""
    system = [message_fields(m) for m in req.messages if m.role in ("system", "developer")]
    tools = [[t.name, t.description, dict(t.parameters)] for t in req.tools]
    choice = None if req.tool_choice is None else [req.tool_choice.mode, req.tool_choice.name]
    response_format = None if req.response_format is None else dict(req.response_format)
    return [system, tools, choice, req.parallel_tool_calls, response_format]


def canonical(req: GenerationRequest) -> bytes:
    """The request as canonical JSON: what the answer depends on, in a fixed form. Object keys
    are sorted (tool schemas, response formats); numbers are floats where the API takes floats,
    so ``temperature: 0`` and ``0.0`` are one request."""
    shape = "text" if req.prompt is not None else "chat"
    body = [shape, req.prompt, [message_fields(m) for m in req.messages], context(req),
            sampling(req)]
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def entry_key(scope: Scope, req: GenerationRequest) -> EntryKey:
    """The key of ``req``'s answer within ``scope``."""
    digest = hashlib.sha256(orjson.dumps(scope.fields()))
    digest.update(canonical(req))
    return EntryKey(scope.model, scope.tenant, digest.hexdigest())
