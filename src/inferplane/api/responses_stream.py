"""Canonical stream events -> the Responses API's typed events, each with its
``sequence_number``: ``response.created`` and ``response.in_progress``; per output item
``output_item.added``, its parts and deltas, ``output_item.done``; then ``response.completed``
(``response.incomplete`` when ``max_output_tokens`` cut it short), or ``response.failed`` when
the upstream fails midway. Shapes follow the ``openai`` SDK's ``types/responses`` models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from inferplane.api.responses_items import (
    Status,
    error_of,
    function_call_item,
    message_item,
    response_object,
    status_of,
    text_part,
    usage,
)
from inferplane.api.responses_parse import ResponsesCall, new_id
from inferplane.errors import InferplaneError
from inferplane.protocol.types import Finished, TextDelta, ToolCall, ToolCallDelta


@dataclass(slots=True)
class _Item:
    """An output item being streamed: a message's text, or a call's arguments."""

    index: int
    id: str
    call: ToolCall | None = None  # None: the assistant's message
    parts: list[str] = field(default_factory=list)
    done: dict[str, Any] | None = None  # the item as finished

    @property
    def text(self) -> str:
        return "".join(self.parts)


class ResponseEvents:
    """The SSE frames of one streamed response. ``final``: the response object once the
    last event was rendered (what is stored), else None."""

    def __init__(self, call: ResponsesCall, response_id: str, created_at: int) -> None:
        self.call, self.id, self.created_at = call, response_id, created_at
        self.final: dict[str, Any] | None = None
        self._sequence = 0
        self._items: list[_Item] = []
        self._message: _Item | None = None  # the open message, if any
        self._calls: dict[int, _Item] = {}  # by the canonical call index
        self._status: Status = "completed"  # the items' when they close

    def first(self) -> bytes:
        response = self._response("in_progress")
        return (self._event("response.created", response=response)
                + self._event("response.in_progress", response=response))

    def text(self, delta: TextDelta) -> bytes:
        frames = b""
        if self._message is None:
            item = self._message = self._open(None)
            frames += self._event("response.output_item.added", output_index=item.index,
                                  item=message_item(item.id, "", "in_progress") | {"content": []})
            frames += self._event("response.content_part.added", item_id=item.id,
                                  output_index=item.index, content_index=0,
                                  part=text_part(""))
        item = self._message
        item.parts.append(delta.text)
        return frames + self._event("response.output_text.delta", item_id=item.id,
                                    output_index=item.index, content_index=0,
                                    delta=delta.text, logprobs=[])

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        frames = self._close(self._message) if self._message is not None else b""
        self._message = None
        item = self._calls.get(delta.index)
        if item is None:
            call = ToolCall(delta.id or new_id("call_"), delta.name or "", "")
            item = self._calls[delta.index] = self._open(call)
            frames += self._event("response.output_item.added", output_index=item.index,
                                  item=function_call_item(item.id, call, "in_progress"))
        if not delta.arguments:
            return frames
        item.parts.append(delta.arguments)
        return frames + self._event("response.function_call_arguments.delta", item_id=item.id,
                                    output_index=item.index, delta=delta.arguments)

    def finish(self, finished: Finished) -> bytes:
        """Every item still open is done."""
        self._status, _ = status_of(finished.finish_reason)
        opened = self.text(TextDelta("")) if not self._items else b""  # an empty message
        return opened + b"".join(self._close(item) for item in self._items if item.done is None)

    def done(self, finished: Finished) -> bytes:
        status, incomplete = status_of(finished.finish_reason)
        self.final = response_object(
            self.id, self.created_at, self.call, status,
            [item.done for item in self._items if item.done is not None],
            usage=usage(finished.usage), incomplete=incomplete,
            completed_at=int(time.time()) if status == "completed" else None)
        return self._event(f"response.{status}", response=self.final)

    def error(self, exc: InferplaneError) -> bytes:
        """The upstream failed midway: the response failed, with what came so far."""
        output = [item.done or self._finished(item, "incomplete") for item in self._items]
        response = self._response("failed", output, error=error_of(exc))
        return self._event("response.failed", response=response)

    def _open(self, call: ToolCall | None) -> _Item:
        item = _Item(len(self._items), new_id("msg_" if call is None else "fc_"), call)
        self._items.append(item)
        return item

    def _close(self, item: _Item) -> bytes:
        done = item.done = self._finished(item, self._status)
        if item.call is None:
            text = item.text
            return (self._event("response.output_text.done", item_id=item.id,
                                output_index=item.index, content_index=0, text=text,
                                logprobs=[])
                    + self._event("response.content_part.done", item_id=item.id,
                                  output_index=item.index, content_index=0,
                                  part=text_part(text))
                    + self._event("response.output_item.done", output_index=item.index,
                                  item=done))
        return (self._event("response.function_call_arguments.done", item_id=item.id,
                            output_index=item.index, name=item.call.name,
                            arguments=item.text)
                + self._event("response.output_item.done", output_index=item.index,
                              item=done))

    @staticmethod
    def _finished(item: _Item, status: Status) -> dict[str, Any]:
        if item.call is None:
            return message_item(item.id, item.text, status)
        return function_call_item(item.id, ToolCall(item.call.id, item.call.name, item.text),
                                  status)

    def _response(self, status: Status, output: list[dict[str, Any]] | None = None,
                  error: dict[str, str] | None = None) -> dict[str, Any]:
        return response_object(self.id, self.created_at, self.call, status, output or [],
                               error=error)

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
