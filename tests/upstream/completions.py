"""OpenAI legacy Completions (``POST /v1/completions``): one choice per prompt and per ``n``.

As the real endpoint: ``max_tokens`` defaults to 16; prompts may be a string, strings, token
ids or token-id arrays (ids are echoed as numbers); streamed chunks carry ``text`` deltas, and
``stream_options.include_usage`` adds a last chunk with ``choices: []`` and the usage.
"""

from __future__ import annotations

from typing import Any

from .echo import Prompt, answer, count_words
from .openai_wire import DONE, FINGERPRINT, FINISH, model_not_found
from .settings import Settings
from .wire import (
    Output,
    Request,
    Stream,
    WireError,
    check_model,
    int_or_none,
    json_body,
    new_id,
    now,
    prompt_texts,
    require,
    sse,
    stops,
)

DEFAULT_MAX_TOKENS = 16


def completion_prompts(body: Any) -> list[str]:
    """The prompts of a Completions request: a string, strings, or token-id arrays."""
    prompts = prompt_texts(require(body, "prompt", "Missing required parameter: 'prompt'."))
    if prompts is None:
        raise WireError(400, "Invalid prompt: expected a string, strings or token arrays.",
                        param="prompt")
    return prompts


def create(req: Request, settings: Settings) -> Output:
    """``POST /v1/completions`` (legacy): one choice per prompt and per ``n``."""
    body = req.body
    model = check_model(require(body, "model", "you must provide a model parameter"),
                        settings, model_not_found)
    max_tokens = int_or_none(body.get("max_tokens"), "max_tokens")
    limit = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    stop = stops(body.get("stop"))
    n = int_or_none(body.get("n"), "n") or 1
    replies = [answer(Prompt(count_words([p]), p, max_tokens=limit, stop=stop),
                      settings.name)
               for p in completion_prompts(body) for _ in range(n)]
    prompt_tokens = sum(r.prompt_tokens for r in replies) // n
    done = sum(r.completion_tokens for r in replies)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": done,
             "total_tokens": prompt_tokens + done}
    base = {"id": new_id("cmpl-"), "object": "text_completion", "created": now(),
            "model": model, "system_fingerprint": FINGERPRINT}
    if not body.get("stream"):
        choices = [{"text": r.text, "index": i, "logprobs": None,
                    "finish_reason": FINISH[r.finish]} for i, r in enumerate(replies)]
        return json_body({**base, "choices": choices, "usage": usage},
                         tokens=max(r.completion_tokens for r in replies))
    chunks = [sse({**base, "choices": [{"text": p, "index": i, "logprobs": None,
                                        "finish_reason": None}]})
              for i, r in enumerate(replies) for p in r.pieces]
    chunks += [sse({**base, "choices": [{"text": "", "index": i, "logprobs": None,
                                         "finish_reason": FINISH[r.finish]}]})
               for i, r in enumerate(replies)]
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(sse({**base, "choices": [], "usage": usage}))
    chunks.append(DONE)
    return Stream(chunks)
