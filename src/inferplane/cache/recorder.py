"""The answer of one attempt, kept as its events go by to the client, for the cache to store."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from inferplane.protocol.types import (
    Finished,
    Relayed,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)


class Recorder:
    """Watches the events of one attempt: its text, whether it made tool calls or relayed
    frames it cannot read, and how it finished (None until it did)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finished: Finished | None = None
        self.opaque = False  # tool calls or relayed frames: nothing the cache may keep

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def watch(self, events: AsyncGenerator[StreamEvent, None]
                    ) -> AsyncGenerator[StreamEvent, None]:
        """``events``, unchanged, noted on their way; closing this closes ``events``."""
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    self.parts.append(event.text)
                elif isinstance(event, Finished):
                    self.finished = event
                elif isinstance(event, ToolCallDelta | Relayed):
                    self.opaque = True
                yield event
        finally:
            await events.aclose()
