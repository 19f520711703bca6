"""What the adapter tests share: a recording meter, request builders, stream collection."""

from __future__ import annotations

from typing import Any

from inferplane.protocol.types import (
    Finished,
    GenerationRequest,
    Message,
    SamplingParams,
    StreamEvent,
    TextDelta,
)
from inferplane.providers.base import Provider


class Meter:
    """Records the usage a provider reports for a stream closed early."""

    def __init__(self) -> None:
        self.events: list[Finished] = []

    def finished(self, event: Finished) -> None:
        self.events.append(event)


def chat(*messages: Message, stream: bool = False, **fields: Any) -> GenerationRequest:
    return GenerationRequest(id="req-1", endpoint="chat.completions", model="chat",
                             params=fields.pop("params", SamplingParams()),
                             messages=messages, stream=stream, **fields)


async def collect(provider: Provider, request: GenerationRequest) -> list[StreamEvent]:
    return [e async for e in provider.stream(request, Meter())]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))
