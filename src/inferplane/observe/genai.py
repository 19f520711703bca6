"""A finished request as OpenTelemetry attributes: the GenAI semantic conventions'
(``gen_ai.*``, ``error.type``) and Inferplane's own (``inferplane.*``). Pure: no OpenTelemetry
import, so it is tested, and costs nothing, without the SDK.

The names are those of the semantic conventions' GenAI registry as of
opentelemetry-semantic-conventions 0.66b0 (semconv 1.38): ``gen_ai.provider.name`` (which
replaced ``gen_ai.system``), ``gen_ai.usage.cache_read.input_tokens``,
``gen_ai.usage.cache_creation.input_tokens``, ``gen_ai.usage.reasoning.output_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from inferplane.ledger.record import UsageRecord
from inferplane.protocol.types import GenerationRequest

Attributes = dict[str, Any]  # str, bool, int, float, or a sequence of one of them

OPERATIONS: dict[str, str] = {  # by Endpoint
    "chat.completions": "chat", "messages": "chat", "completions": "text_completion",
    "embeddings": "embeddings", "responses": "chat",
}
# Inferplane's provider names -> the convention's well-known values; others pass as they are
PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini",
             "azure": "azure.ai.openai", "llamacpp": "llama.cpp"}


#: Attributes whose values come from bounded sets (the configuration, the protocol, the
#: tenants): their encodings are worth keeping from span to span (``observe/otlp.py``).
REPEATING = frozenset({
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
    "gen_ai.response.model", "gen_ai.response.finish_reasons", "gen_ai.request.stream",
    "error.type", "inferplane.deployment", "inferplane.version", "inferplane.region",
    "inferplane.routing.policy", "inferplane.tenant", "inferplane.cache",
    "inferplane.energy_method", "inferplane.usage_source", "inferplane.attempt.outcome",
})


def operation(endpoint: str) -> str:
    """``gen_ai.operation.name`` of an :data:`~inferplane.protocol.types.Endpoint`."""
    return OPERATIONS.get(endpoint, endpoint)


def span_name(endpoint: str, model: str) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, as the convention names spans."""
    return f"{operation(endpoint)} {model}" if model else operation(endpoint)


def provider_name(provider: str) -> str:
    return PROVIDERS.get(provider, provider)


def record_attributes(record: UsageRecord, response_model: str | None) -> Attributes:
    """What the request's ledger record says, as span attributes; ``response_model``: the
    model the deployment that answered serves (its ``upstream_model``, else the name asked)."""
    attrs: Attributes = {
        "gen_ai.operation.name": operation(record.endpoint),
        "gen_ai.request.model": record.model,
        "inferplane.request.id": record.id,
        "inferplane.status": record.status,
        "inferplane.attempts": record.attempt_count,
        "inferplane.stream": record.stream,
    }
    if record.status == 200:
        attrs["gen_ai.response.id"] = record.id
    if record.provider is not None:
        attrs["gen_ai.provider.name"] = provider_name(record.provider)
        attrs["gen_ai.response.model"] = response_model or record.model
        attrs["gen_ai.usage.input_tokens"] = record.prompt_tokens
        attrs["gen_ai.usage.output_tokens"] = record.completion_tokens
        _nonzero(attrs, "gen_ai.usage.cache_read.input_tokens", record.cached_tokens)
        _nonzero(attrs, "gen_ai.usage.cache_creation.input_tokens", record.cache_write_tokens)
        _nonzero(attrs, "gen_ai.usage.reasoning.output_tokens", record.reasoning_tokens)
    if record.finish_reason is not None:
        attrs["gen_ai.response.finish_reasons"] = (record.finish_reason,)
    if record.ttft_ms is not None:
        attrs["gen_ai.response.time_to_first_chunk"] = record.ttft_ms / 1000
    if record.error_type is not None:
        attrs["error.type"] = record.error_type
    _some(attrs, {
        "inferplane.deployment": record.deployment, "inferplane.version": record.version,
        "inferplane.region": record.region, "inferplane.routing.policy": record.routing_policy,
        "inferplane.routing.reason": record.routing_reason, "inferplane.tenant": record.tenant,
        "inferplane.cache": record.cache, "inferplane.cost_usd": record.cost_usd,
        "inferplane.energy_j": record.energy_j, "inferplane.energy_method": record.energy_method,
        "inferplane.co2_g": record.co2_g, "inferplane.water_l": record.water_l,
        "inferplane.usage_source": record.usage_source,
    })
    return attrs


def request_attributes(req: GenerationRequest) -> Attributes:
    """The sampling parameters a generation asked for."""
    params = req.params
    attrs: Attributes = {"gen_ai.request.temperature": params.temperature,
                         "gen_ai.request.top_p": params.top_p,
                         "gen_ai.request.stream": req.stream}
    if params.max_tokens is not None:
        attrs["gen_ai.request.max_tokens"] = params.max_tokens
    if params.seed is not None:
        attrs["gen_ai.request.seed"] = params.seed
    if params.stop:
        attrs["gen_ai.request.stop_sequences"] = params.stop
    return attrs


def input_messages(req: GenerationRequest) -> Attributes:
    """The prompt, in the convention's JSON form (only with ``capture_content: true``)."""
    if req.messages:
        messages: Sequence[dict[str, Any]] = [
            {"role": m.role, "parts": [{"type": "text", "content": m.content}]}
            for m in req.messages]
    else:
        messages = [{"role": "user", "parts": [{"type": "text", "content": req.prompt or ""}]}]
    return {"gen_ai.input.messages": orjson.dumps(messages).decode()}


def output_messages(text: str, finish_reason: str) -> Attributes:
    """The completion, in the convention's JSON form (only with ``capture_content: true``)."""
    message = {"role": "assistant", "parts": [{"type": "text", "content": text}],
               "finish_reason": finish_reason}
    return {"gen_ai.output.messages": orjson.dumps([message]).decode()}


def _nonzero(attrs: Attributes, name: str, value: int) -> None:
    if value:
        attrs[name] = value


def _some(attrs: Attributes, values: dict[str, Any]) -> None:
    attrs.update((k, v) for k, v in values.items() if v is not None)
