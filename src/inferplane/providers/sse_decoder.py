"""Server-sent events from raw bytes: split whatever chunks the network delivers into events.

An upstream's stream arrives in chunks that need not end on a line: one chunk may hold many
events (a fast upstream writes a whole reply at once), or a fraction of one. :class:`SseDecoder`
keeps the unfinished line between chunks and returns the events each chunk completes, so the
reader does one read (and one timeout) per chunk instead of one per line. Nothing here does I/O.

>>> d = SseDecoder()
>>> d.feed(b'data: {"a": 1}\\n\\nevent: done\\ndata: x\\n')
[('message', b'{"a": 1}')]
>>> d.feed(b'data: y\\n\\n: a comment\\n')
[('done', b'x\\ny')]
"""

from __future__ import annotations

MAX_LINE_BYTES = 1 << 20  # one SSE line (a large tool call's arguments fit)

Event = tuple[str, bytes]


class SseDecoder:
    """Bytes in, ``(event name, data)`` out. A line ends with ``\\n`` (a ``\\r`` before it is
    dropped); a blank line ends an event; ``data`` lines join with ``\\n``; ``event`` names it
    (``message`` by default); other fields and comments are ignored; an event without data is
    not dispatched. A line longer than ``max_line`` raises :class:`ValueError`.
    """

    __slots__ = ("_data", "_max_line", "_name", "_tail")

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._max_line = max_line
        self._tail = b""  # the start of a line the next chunk finishes
        self._name = ""
        self._data = bytearray()

    def feed(self, chunk: bytes) -> list[Event]:
        """The events ``chunk`` completes, in order."""
        if self._tail:
            chunk = self._tail + chunk
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        if len(chunk) > self._max_line and max(map(len, lines), default=0) > self._max_line:
            raise ValueError("an SSE line is longer than the limit")
        if len(self._tail) > self._max_line:
            raise ValueError("an SSE line is longer than the limit")
        events: list[Event] = []
        data = self._data
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:  # a blank line ends an event
                if data:
                    events.append((self._name or "message", bytes(data)))
                    data.clear()
                self._name = ""
                continue
            field, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if field == b"data":
                if data:
                    data += b"\n"
                data += value
            elif field == b"event":
                self._name = value.decode("utf-8", "replace")
        return events

    def close(self) -> list[Event]:
        """At the end of the stream: the last event, if the stream ended without its blank
        line (an unfinished last line counts as complete)."""
        events = self.feed(b"\n") if self._tail else []
        if self._data:
            events.append((self._name or "message", bytes(self._data)))
            self._data.clear()
        return events
