"""Log probabilities in OpenAI's wire format -> canonical :class:`TokenLogprob`, and the
request fields that ask for them.

Chat (``choices[].logprobs.content[]``): ``{token, logprob, bytes, top_logprobs: [{token,
logprob, bytes}]}``. Completions (``choices[].logprobs``): parallel lists ``tokens``,
``token_logprobs``, ``top_logprobs`` (``{token: logprob}`` per position) and ``text_offset``.
"""

from __future__ import annotations

from typing import Any

from inferplane.protocol.types import Endpoint, TokenLogprob


def request_fields(endpoint: Endpoint, logprobs: int | None) -> dict[str, Any]:
    """The fields asking an OpenAI-compatible server for ``logprobs`` alternatives per token.

    >>> request_fields("chat.completions", 3), request_fields("completions", 0)
    ({'logprobs': True, 'top_logprobs': 3}, {'logprobs': 0})
    """
    if logprobs is None:
        return {}
    if endpoint == "completions":
        return {"logprobs": logprobs}
    return {"logprobs": True, "top_logprobs": logprobs}


def read_logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    """A choice's log probabilities, chat's or completions' shape (none: ``()``).

    >>> read_logprobs({"logprobs": {"tokens": ["Hi"], "token_logprobs": [-0.5],
    ...                             "top_logprobs": [{"Hi": -0.5, "Ho": -1.5}]}})[0].top[1]
    TokenLogprob(token='Ho', logprob=-1.5, bytes=(72, 111), top=())
    """
    data = choice.get("logprobs")
    if not isinstance(data, dict):
        return ()
    content = data.get("content")
    if isinstance(content, list):
        return tuple(_chat_entry(entry) for entry in content if isinstance(entry, dict))
    tokens, values = data.get("tokens") or [], data.get("token_logprobs") or []
    tops = data.get("top_logprobs") or [None] * len(tokens)
    return tuple(
        TokenLogprob(token, float(value or 0.0), tuple(token.encode()),
                     tuple(TokenLogprob(t, float(lp), tuple(t.encode()))
                           for t, lp in (top or {}).items()))
        for token, value, top in zip(tokens, values, tops, strict=False)
    )


def _chat_entry(entry: dict[str, Any]) -> TokenLogprob:
    token = str(entry.get("token", ""))
    raw = entry.get("bytes")
    data = tuple(raw) if isinstance(raw, list) else tuple(token.encode())
    return TokenLogprob(token, float(entry.get("logprob") or 0.0), data,
                        tuple(_chat_entry(t) for t in entry.get("top_logprobs") or ()
                              if isinstance(t, dict)))
