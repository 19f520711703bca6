"""Where a request's token counts come from when the upstream does not say.

``reported``: the upstream's usage (every adapter asks for it, e.g. OpenAI's
``stream_options.include_usage``). ``counted``: the stream was cut short before the usage
arrived; the prompt's tokens are the engine's count and the output's are the text deltas
received, each holding at least one token (a lower bound). ``estimated``: the upstream reported
no usage at all (some OpenAI-compatible servers omit it); both sides are estimated from the
text's length at ``CHARS_PER_TOKEN`` (the vendors' rule of thumb for English; no tokenizer of a
hosted model can be loaded offline). The ledger records which.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from inferplane.protocol.types import GenerationRequest, Usage

CHARS_PER_TOKEN = 4.0
TEMPLATE_TOKENS_PER_MESSAGE = 8  # role markers and separators a chat template adds


def estimate_tokens(chars: int) -> int:
    """>>> estimate_tokens(0), estimate_tokens(3), estimate_tokens(401)
    (0, 1, 100)
    """
    return 0 if chars <= 0 else max(1, round(chars / CHARS_PER_TOKEN))


def prompt_texts(request: GenerationRequest) -> Iterator[str]:
    """The texts a request's prompt is made of: its prompt, or its messages and their tool
    calls."""
    if request.prompt is not None:
        yield request.prompt
    for m in request.messages:
        yield m.content
        for call in m.tool_calls:
            yield call.name
            yield call.arguments


def request_chars(request: GenerationRequest | None) -> int:
    """The characters of a request's prompt: its messages (with tool calls) or its prompt."""
    return 0 if request is None else sum(map(len, prompt_texts(request)))


def prompt_bound(request: GenerationRequest) -> int:
    """An upper bound of the prompt's tokens: its UTF-8 bytes (a byte-level tokenizer never
    makes more tokens than bytes) plus a few per message for the chat template, and the tools'
    schemas.

    >>> from inferplane.protocol.types import SamplingParams
    >>> prompt_bound(GenerationRequest("r", "completions", "m", SamplingParams(), prompt="héllo"))
    14
    """
    size = sum(len(text.encode()) for text in prompt_texts(request))
    for tool in request.tools:
        size += (len(orjson.dumps(tool.parameters)) + len(tool.name)
                 + len(tool.description.encode()))
    return size + TEMPLATE_TOKENS_PER_MESSAGE * (len(request.messages) + 1)


def settle_usage(usage: Usage, finished: bool, deltas: int, prompt_chars: int,
                 output_chars: int) -> tuple[Usage, str]:
    """The usage to account and its source (see the module's docstring).

    >>> settle_usage(Usage(12, 5), True, 5, 40, 20)[1]
    'reported'
    >>> settle_usage(Usage(12, 0), False, 3, 40, 20)[0].completion_tokens
    3
    >>> usage, source = settle_usage(Usage(), True, 2, 400, 80)
    >>> usage.prompt_tokens, usage.completion_tokens, source
    (100, 20, 'estimated')
    """
    if finished and usage.total_tokens > 0:
        return usage, "reported"
    if usage.prompt_tokens > 0:
        return Usage(usage.prompt_tokens, max(usage.completion_tokens, deltas),
                     cached_tokens=usage.cached_tokens), "counted"
    output = max(deltas, estimate_tokens(output_chars))
    if prompt_chars == 0 and output == 0:
        return usage, "reported"  # nothing was sent or received: nothing to count
    return Usage(estimate_tokens(prompt_chars), output), "estimated"
