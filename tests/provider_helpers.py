"""What the provider tests share: a recording usage sink, a request builder, stream collection."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.errors import UpstreamError
from inferplane.protocol.types import (
    Finished,
    GenerationRequest,
    Message,
    SamplingParams,
    StreamEvent,
    TextDelta,
)
from inferplane.providers.base import Provider


class RecordingSink:
    """Records the usage a provider reports for a stream closed early."""

    def __init__(self) -> None:
        self.events: list[Finished] = []
        self.energies: list[tuple[float, str]] = []

    def finished(self, event: Finished) -> None:
        self.events.append(event)

    def energy(self, joules: float, method: str) -> None:
        self.energies.append((joules, method))


def chat(*messages: Message, **fields: Any) -> GenerationRequest:
    """A chat request (by default one user turn, "Hi"); ``fields`` set the rest."""
    return GenerationRequest(id="req-1", endpoint="chat.completions", model="chat",
                             params=fields.pop("params", SamplingParams()),
                             messages=messages or (Message("user", "Hi"),), **fields)


async def collect(provider: Provider, request: GenerationRequest) -> list[StreamEvent]:
    return [e async for e in provider.stream(request, RecordingSink())]


async def collect_until_error(provider: Provider, request: GenerationRequest
                              ) -> tuple[list[StreamEvent], UpstreamError]:
    """The events a stream gave before it failed, and its error; fails unless it raises one."""
    events: list[StreamEvent] = []
    with pytest.raises(UpstreamError) as info:
        async for event in provider.stream(request, RecordingSink()):
            events.append(event)
    return events, info.value


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))
