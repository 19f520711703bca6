"""Chat templates: messages -> prompt segments.

A segment is ``(text, special)``: template markup is tokenized with special-token parsing on,
message content with it off, so a user cannot forge ``<start_of_turn>`` inside their text.
"""

from __future__ import annotations

from collections.abc import Sequence

from inferplane.protocol.types import Message

Segment = tuple[str, bool]

_GEMMA_ROLE = {"user": "user", "assistant": "model", "tool": "user"}  # no tool role


def render_gemma(messages: Sequence[Message]) -> list[Segment]:
    """Render messages in Gemma's turn format, ending with an open model turn.

    Gemma has no system role: system and developer messages are folded into the first user
    turn, separated from it by a blank line.

    >>> render_gemma([Message("user", "Hi")])
    [('<start_of_turn>user\\n', True), ('Hi', False), ('<end_of_turn>\\n', True), \
('<start_of_turn>model\\n', True)]
    """
    system = "\n\n".join(m.content for m in messages if m.role in ("system", "developer"))
    turns = [(m.role, m.content) for m in messages if m.role not in ("system", "developer")]
    if system:
        if turns and turns[0][0] == "user":
            turns[0] = ("user", f"{system}\n\n{turns[0][1]}")
        else:
            turns.insert(0, ("user", system))
    segments: list[Segment] = []
    for role, content in turns:
        segments += [
            (f"<start_of_turn>{_GEMMA_ROLE[role]}\n", True),
            (content, False),
            ("<end_of_turn>\n", True),
        ]
    segments.append(("<start_of_turn>model\n", True))
    return segments


TEMPLATES = {"gemma": render_gemma}
