"""Which fields of a Responses request the gateway acts on, which it accepts because they ask
for nothing here, and why it refuses every other one: none is dropped without a word.

- :data:`ACTED_ON`: parsed into the canonical request, or into what is stored;
- :data:`NEUTRAL`: a value that asks for nothing beyond the defaults (``background: false``,
  ``include: []``, ``truncation: "disabled"``...), accepted and left out;
- :data:`HINTS`: fields whose value never changes the answer (a cache key, an end-user id for
  abuse detection, the stream's padding): accepted whatever their value;
- anything else is refused with a 400 naming it, with the reason :data:`REFUSED` gives where
  the field is known (a hosted feature, a server-side conversation, a prompt template).

docs/api.md#responses lists every field.
"""

from __future__ import annotations

from typing import Any

from inferplane.errors import InvalidRequest

ACTED_ON = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
    "max_output_tokens", "temperature", "top_p", "metadata", "store", "user",
    "previous_response_id", "stream",
})
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "background": (False,), "include": ([],), "truncation": ("disabled",),
    "service_tier": ("auto", "default"), "reasoning": ({},), "top_logprobs": (0,),
    "prompt_cache_retention": ("in_memory",),
}
HINTS = frozenset({"prompt_cache_key", "safety_identifier", "stream_options"})
REFUSED: dict[str, str] = {
    "background": "background mode is not supported; send the request and wait for it "
                  "(or stream it)",
    "conversation": "server-side conversations are not supported; chain responses with "
                    "previous_response_id",
    "prompt": "stored prompt templates are not supported; send the instructions and input",
    "reasoning": "reasoning settings are not supported",
    "include": "no extra output data can be included",
    "truncation": "only truncation 'disabled' is supported",
    "top_logprobs": "log probabilities are not supported on the Responses API",
    "max_tool_calls": "max_tool_calls is not supported",
    "context_management": "server-side context management is not supported",
    "prompt_cache_retention": "only prompt_cache_retention 'in_memory' is supported",
    "service_tier": "only service_tier 'auto' or 'default' is supported",
}


def refuse_unsupported(body: dict[str, Any]) -> None:
    """Raise the 400 for the first field of ``body`` the gateway neither acts on nor may let
    pass (null values ask for nothing)."""
    for name, value in body.items():
        if value is None or name in ACTED_ON or name in HINTS or _neutral(name, value):
            continue
        why = REFUSED.get(name, "the gateway does not support it on the Responses API")
        raise InvalidRequest(f"Unsupported parameter: '{name}': {why}.", param=name,
                             code="unsupported_parameter")


def _neutral(name: str, value: Any) -> bool:
    return any(value == default and type(value) is type(default)
               for default in NEUTRAL.get(name, ()))
