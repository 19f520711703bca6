"""What the semantic cache matches (pure): a request's last user turn, within a scope that
everything else about the request must share.

Only the last user turn is compared by meaning. Everything else must be equal for two
requests to share an answer: the exact cache's scope (tenant, model, alias, serving
deployments and their versions), the request's context (system prompt, tools, tool choice,
response format: :func:`key.context`), every earlier turn of the conversation, and the sampling
parameters. A plain completion (a prompt, no messages) is matched on its prompt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from inferplane.cache.key import Scope, context, message_fields, sampling
from inferplane.protocol.types import GenerationRequest

SEMANTIC_VERSION = 1  # bump when the scope changes: old entries then never match


@dataclass(frozen=True, slots=True)
class Question:
    """The text compared by meaning, and the digest of everything that must be equal."""

    text: str
    scope: str


def question(scope: Scope, req: GenerationRequest, max_chars: int) -> Question | None:
    """The question of ``req`` within ``scope``; None when the request has none the semantic
    cache may match: its last turn is not the user's, is empty, or is longer than
    ``max_chars``.

    >>> from inferplane.protocol.types import Message, SamplingParams
    >>> s = Scope("acme", "m", "m", "serving")
    >>> def ask(*turns):
    ...     msgs = tuple(Message(r, c) for r, c in turns)
    ...     return GenerationRequest(id="r", endpoint="chat.completions", model="m",
    ...                              params=SamplingParams(temperature=0.0), messages=msgs)
    >>> hi = ("assistant", "hello")
    >>> a = question(s, ask(("user", "hi"), hi, ("user", "capital of France?")), 99)
    >>> b = question(s, ask(("user", "hi"), hi, ("user", "France's capital?")), 99)
    >>> c = question(s, ask(("user", "hey"), hi, ("user", "capital of France?")), 99)
    >>> a.text, a.scope == b.scope, a.scope == c.scope
    ('capital of France?', True, False)
    >>> question(s, ask(("user", "hi"), ("assistant", "hello")), 99) is None
    True
    """
    if req.prompt is not None:
        text, earlier = req.prompt, []
    elif req.messages and req.messages[-1].role == "user" and not req.messages[-1].tool_calls:
        text = req.messages[-1].content
        earlier = [message_fields(m) for m in req.messages[:-1]
                   if m.role not in ("system", "developer")]
    else:
        return None
    if not text.strip() or len(text) > max_chars:
        return None
    shape = "text" if req.prompt is not None else "chat"
    digest = hashlib.sha256(orjson.dumps(
        [SEMANTIC_VERSION, *scope.fields(), shape, context(req), earlier, sampling(req)],
        option=orjson.OPT_SORT_KEYS))
    return Question(text, digest.hexdigest()[:32])
