"""Which fields of a Responses request the gateway acts on, which it accepts because they ask
for nothing here, which go to a deployment that speaks the Responses API itself, and why it
refuses the rest: none is dropped without a word.

- :data:`ACTED_ON`: parsed into the canonical request, or into what is stored;
- :data:`NEUTRAL`: a value that asks for nothing beyond the defaults (``background: false``,
  ``include: []``, ``truncation: "disabled"``...), accepted and left out;
- :data:`HINTS`: fields whose value never changes the answer (a cache key, an end-user id for
  abuse detection, the stream's padding): accepted whatever their value;
- :data:`REFUSED`: what no deployment can serve through the gateway (background mode, a
  server-side conversation, prompt templates, extra output data the response could not
  carry): a 400 naming the field and why;
- any other field (``reasoning: {"effort": ...}``, ``truncation: "auto"``, ``max_tool_calls``,
  ``service_tier: "flex"``...) is a vendor extension of the Responses API: it goes as sent to
  a deployment that speaks it (``api: responses``), and a request whose model has none is
  refused with a 400 naming it (``routing/router.py::unserved``).

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
    "include": "no extra output data can be included",
    "top_logprobs": "log probabilities are not supported on the Responses API",
    "context_management": "server-side context management is not supported",
}
#: The parts of ``reasoning`` a deployment that speaks Responses may take: the effort only
#: (a summary would come back as output items the gateway does not pass on).
REASONING = frozenset({"effort"})


def extensions(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``body`` for a deployment that speaks the Responses API itself; raises
    the 400 for the first field no deployment can serve (null values ask for nothing)."""
    found: dict[str, Any] = {}
    for name, value in body.items():
        if value is None or name in ACTED_ON or name in HINTS or _neutral(name, value):
            continue
        if name in REFUSED:
            raise InvalidRequest(f"Unsupported parameter: '{name}': {REFUSED[name]}.",
                                 param=name, code="unsupported_parameter")
        if name == "reasoning":
            _check_reasoning(value)
        found[name] = value
    return found


def _check_reasoning(value: Any) -> None:
    other = sorted(set(value) - REASONING) if isinstance(value, dict) else None
    if other is None or other:
        where = "reasoning" if other is None else f"reasoning.{other[0]}"
        raise InvalidRequest(f"Unsupported parameter: '{where}': only reasoning.effort can "
                             "be sent on.", param=where, code="unsupported_parameter")


def _neutral(name: str, value: Any) -> bool:
    return any(value == default and type(value) is type(default)
               for default in NEUTRAL.get(name, ()))
