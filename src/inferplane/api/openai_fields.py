"""Which fields of an OpenAI request body the gateway acts on, which it lets pass, and what
becomes of every other one: no field is dropped without a word.

- the fields it acts on (:data:`ACTED_ON`) are parsed into the canonical request;
- a field at its documented default (:data:`NEUTRAL`: ``frequency_penalty: 0``,
  ``logit_bias: {}``...; some clients send them on every request) asks for nothing and is left
  out;
- any other field is a vendor extension (``top_k``, ``repetition_penalty``, ``min_p``,
  ``frequency_penalty: 0.5``...): it goes as sent to a deployment that
  takes extensions (an OpenAI-compatible server: vLLM, SGLang, TGI, OpenAI, which answers for
  it), and a request whose model has no such deployment is refused with a 400 that names it.

docs/api.md lists every field per endpoint.
"""

from __future__ import annotations

from typing import Any

from inferplane.protocol.types import Endpoint

_COMMON = frozenset({"model", "stream", "stream_options", "n", "max_tokens", "temperature",
                     "top_p", "stop", "seed", "user", "logprobs", "ignore_eos"})
#: The fields each endpoint parses into the canonical request.
ACTED_ON: dict[Endpoint, frozenset[str]] = {
    "chat.completions": _COMMON | {"messages", "max_completion_tokens", "tools", "tool_choice",
                                   "parallel_tool_calls", "top_logprobs", "response_format"},
    "completions": _COMMON | {"prompt"},
}
#: Fields whose value here asks for nothing beyond the defaults: accepted and left out.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "frequency_penalty": (0, 0.0), "presence_penalty": (0, 0.0), "logit_bias": ({},),
    "echo": (False,), "best_of": (1,), "response_format": ({"type": "text"},),
    "store": (False,), "metadata": ({},),
}


def extensions(endpoint: Endpoint, body: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``body`` the gateway does not act on and that ask for something: null
    and neutral values are left out.

    >>> extensions("completions", {"model": "m", "prompt": "p", "top_k": 5, "echo": False,
    ...                            "frequency_penalty": 0.5, "suffix": None})
    {'top_k': 5, 'frequency_penalty': 0.5}
    """
    acted_on = ACTED_ON[endpoint]
    return {name: value for name, value in body.items()
            if name not in acted_on and value is not None
            and not _neutral(name, value)}


def _neutral(name: str, value: Any) -> bool:
    return any(value == default and type(value) is type(default)
               for default in NEUTRAL.get(name, ()))
