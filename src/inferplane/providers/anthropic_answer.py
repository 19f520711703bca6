"""Structured outputs on Anthropic's Messages API, through tool use (Anthropic's own advice
for JSON output): the response format becomes one more tool, the *answer tool*, whose input
schema is the format's schema, and the model is made to call a tool; the answer tool's input
comes back to the client as the assistant's text, and the call is never shown as a tool call.

- ``json_schema``: the tool takes the schema's name (``answer`` when it would clash with a
  client's tool) and the schema; ``json_object``: any object.
- Without client tools the answer tool is forced. With them, the model must call one
  (``any``): a client tool as usual, or the answer tool to answer; a client's ``none`` forces
  the answer tool, a client's named tool is kept as chosen.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from inferplane.protocol.types import Finished, StreamEvent, TextDelta, ToolCallDelta

DEFAULT_NAME = "answer"
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def answer_tool(response_format: Mapping[str, Any], taken: Collection[str]) -> dict[str, Any]:
    """The answer tool's definition, named apart from the client's tools (``taken``).

    >>> answer_tool({"type": "json_object"}, ())["name"]
    'answer'
    >>> spec = {"name": "city", "schema": {"type": "object"}}
    >>> answer_tool({"type": "json_schema", "json_schema": spec}, ["city"])["name"]
    'answer'
    """
    spec = response_format.get("json_schema") or {}
    named = spec.get("name")
    name = named if isinstance(named, str) else DEFAULT_NAME
    if not _NAME.fullmatch(name) or name in taken:
        name = DEFAULT_NAME if DEFAULT_NAME not in taken else f"{DEFAULT_NAME}_{len(taken)}"
    schema = dict(spec.get("schema") or {"type": "object"})
    description = spec.get("description") or "Give your answer: its input is the answer."
    return {"name": name, "description": description, "input_schema": schema}


def answer_choice(name: str, client_choice: Mapping[str, Any] | None, client_tools: bool
                  ) -> dict[str, Any]:
    """The ``tool_choice`` that makes the model answer through the answer tool ``name``."""
    if client_choice is not None and client_choice.get("type") == "tool":
        return dict(client_choice)  # the client named its tool
    keep = {k: v for k, v in (client_choice or {}).items() if k == "disable_parallel_tool_use"}
    if client_tools and (client_choice or {}).get("type") != "none":
        return {"type": "any", **keep}
    return {"type": "tool", "name": name, **keep}


class AnswerAsText:
    """Canonical events with the answer tool's call turned into text: its arguments are the
    answer. Other tool calls keep their order, numbered from 0 among themselves."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._answer: int | None = None  # the answer tool's index among the upstream's calls
        self._others: dict[int, int] = {}  # upstream index -> the client's

    def __call__(self, event: StreamEvent) -> StreamEvent | None:
        if isinstance(event, ToolCallDelta):
            if event.name:  # a call's first piece
                if event.name == self.name and self._answer is None:
                    self._answer = event.index
                else:
                    self._others[event.index] = len(self._others)
            if event.index == self._answer:
                return TextDelta(event.arguments) if event.arguments else None
            index = self._others.get(event.index, event.index)
            return replace(event, index=index) if index != event.index else event
        if isinstance(event, Finished) and event.finish_reason == "tool_calls" \
                and not self._others:
            return replace(event, finish_reason="stop")
        return event
