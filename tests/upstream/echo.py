"""The deterministic "model" behind every protocol: a prompt in neutral form -> a reply.

Rules (the contract the tests rely on):

- Text reply: ``"[NAME] echo: <last user text>"``, or ``"[NAME] tool result: <content>"`` when the
  last turn is a tool result. Whitespace is normalised to single spaces.
- A token is a whitespace-separated word; the first word is emitted bare, later ones with one
  leading space, so the concatenated pieces are the reply text.
- ``max_tokens`` caps the words emitted; finish ``length`` when words were left over.
- A stop sequence ends the reply just before its first occurrence (finish ``stop_sequence``); the
  word in which it matched still counts as generated.
- Tool call: when tools are declared, the choice permits a call and the last turn is not a tool
  result, the reply calls the forced tool (or the first declared) with arguments
  ``{"echo": "<last user text>"}``; its completion tokens are the words of that JSON text.
- Prompt tokens: words in every text the request carries (system, message text, tool-call
  arguments, tool-result content) plus one per declared tool; images and the like count 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

ARG_FRAGMENT_CHARS = 8


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the echo model needs from a request, whatever its protocol (texts as sent)."""

    prompt_tokens: int
    last_user: str
    tool_result: str | None = None
    tool: str | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str

    @property
    def fragments(self) -> list[str]:
        """The arguments JSON cut in short pieces, as a streaming API sends them."""
        a = self.arguments
        return [a[i : i + ARG_FRAGMENT_CHARS] for i in range(0, len(a), ARG_FRAGMENT_CHARS)]


@dataclass(frozen=True, slots=True)
class Reply:
    """The model's answer: text pieces or one tool call, why it ended, and its token counts."""

    pieces: tuple[str, ...]
    finish: str  # "stop" | "length" | "stop_sequence" | "tool"
    prompt_tokens: int
    completion_tokens: int
    stop_sequence: str | None = None
    tool_call: ToolCall | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def count_words(texts: Iterable[str]) -> int:
    """Whitespace-separated words across ``texts``.

    >>> count_words(["a b", " c "])
    3
    """
    return sum(len(t.split()) for t in texts)


def answer(prompt: Prompt, name: str, reply: str | None = None) -> Reply:
    """The reply to ``prompt`` from the model called ``name`` (``reply``: the text of every
    text reply instead of the echo)."""
    if prompt.tool is not None and prompt.tool_result is None:
        args = orjson.dumps({"echo": " ".join(prompt.last_user.split())}).decode()
        return Reply((), "tool", prompt.prompt_tokens, max(1, len(args.split())),
                     tool_call=ToolCall(prompt.tool, args))
    if reply is not None:
        text = reply
    elif prompt.tool_result is not None:
        text = f"[{name}] tool result: {prompt.tool_result}"
    else:
        text = f"[{name}] echo: {prompt.last_user}"
    return generate(text.split(), prompt)


def generate(words: list[str], prompt: Prompt) -> Reply:
    """Emit ``words`` one at a time until max_tokens or a stop sequence ends them."""
    if not prompt.stop:
        n = len(words) if prompt.max_tokens is None else min(len(words), prompt.max_tokens)
        kept = tuple(w if i == 0 else " " + w for i, w in enumerate(words[:n]))
        return Reply(kept, "length" if n < len(words) else "stop", prompt.prompt_tokens, n)
    pieces: list[str] = []
    emitted = ""
    longest = max((len(s) for s in prompt.stop), default=0)
    for i, word in enumerate(words):
        if prompt.max_tokens is not None and i >= prompt.max_tokens:
            return Reply(tuple(pieces), "length", prompt.prompt_tokens, i)
        piece = word if i == 0 else " " + word
        grown = emitted + piece
        hit = _first_stop(grown, prompt.stop, max(0, len(emitted) - longest + 1))
        if hit is not None:
            at, seq = hit
            if at > len(emitted):
                pieces.append(grown[len(emitted) : at])
            elif at < len(emitted):  # the stop began inside earlier pieces: trim them
                pieces = _trim(pieces, at)
            return Reply(tuple(pieces), "stop_sequence", prompt.prompt_tokens, i + 1,
                         stop_sequence=seq)
        pieces.append(piece)
        emitted = grown
    return Reply(tuple(pieces), "stop", prompt.prompt_tokens, len(words))


def _first_stop(text: str, stops: tuple[str, ...], start: int) -> tuple[int, str] | None:
    found = [(i, s) for s in stops if s and (i := text.find(s, start)) >= 0]
    return min(found) if found else None


def _trim(pieces: list[str], length: int) -> list[str]:
    out: list[str] = []
    used = 0
    for p in pieces:
        if used + len(p) >= length:
            if length > used:
                out.append(p[: length - used])
            break
        out.append(p)
        used += len(p)
    return out
