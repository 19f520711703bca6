"""Finished spans in the OTLP protobuf wire format (``ExportTraceServiceRequest``, from
opentelemetry-proto's ``trace/v1/trace.proto`` and ``common/v1/common.proto``), written
directly: a span costs a few tens of microseconds to encode, and no SDK is loaded. Pure.

Field numbers: ExportTraceServiceRequest.resource_spans 1; ResourceSpans.resource 1,
.scope_spans 2; Resource.attributes 1; ScopeSpans.scope 1, .spans 2; InstrumentationScope.name
1, .version 2; Span.trace_id 1, .span_id 2, .trace_state 3, .parent_span_id 4, .name 5, .kind
6, .start_time_unix_nano 7 (fixed64), .end_time_unix_nano 8 (fixed64), .attributes 9, .status
15; Status.message 2, .code 3; KeyValue.key 1, .value 2; AnyValue.string_value 1, .bool_value
2, .int_value 3, .double_value 4 (double), .array_value 5; ArrayValue.values 1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SERVER, CLIENT = 2, 3  # Span.SpanKind
STATUS_ERROR = 2  # Status.StatusCode
_LOW_64 = 2**64 - 1


@dataclass(frozen=True, slots=True)
class FinishedSpan:
    trace_id: int
    span_id: int
    parent_span_id: int | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]  # str, bool, int, float or a sequence of one; None: left out
    error: str | None = None  # the status is ERROR with this message
    tracestate: str | None = None


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINTS = [_varint(n) for n in range(256)]


_TAGS = [bytes((t,)) for t in range(128)]


def _len_field(tag: int, payload: bytes) -> bytes:
    n = len(payload)
    return b"".join((_TAGS[tag], _VARINTS[n] if n < 256 else _varint(n), payload))


def _string(tag: int, text: str) -> bytes:
    return _len_field(tag, text.encode())


_KEYS: dict[str, bytes] = {}  # attribute names repeat: encode each once


def _key(name: str) -> bytes:
    encoded = _KEYS.get(name)
    if encoded is None:
        encoded = _KEYS[name] = _string(0x0A, name)
    return encoded


def _any_value(value: Any) -> bytes:
    if isinstance(value, str):
        return _string(0x0A, value)
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & _LOW_64)  # int64: two's complement as 64 bits
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    if isinstance(value, Sequence):
        return _len_field(0x2A, b"".join(_len_field(0x0A, _any_value(v)) for v in value))
    return _string(0x0A, str(value))


# Encoded key-value pairs that recur from span to span (the model, the deployment, a status, a
# small count), kept so that most of a span's attributes cost one dictionary lookup. Only the
# attributes named in :data:`REPEATING` (their values come from bounded sets), booleans and
# small integers are kept, and at most MAX_PAIRS of them.
REPEATING: set[str] = set()
MAX_PAIRS = 4096
_PAIRS: dict[tuple[str, Any], bytes] = {}


def _pair(key: str, value: Any) -> bytes:
    """A ``KeyValue``'s fields."""
    try:
        found = _PAIRS.get((key, value))
    except TypeError:  # an unhashable value (a list)
        return _key(key) + _len_field(0x12, _any_value(value))
    if found is not None:
        return found
    encoded = _key(key) + _len_field(0x12, _any_value(value))
    if len(_PAIRS) < MAX_PAIRS and (
            key in REPEATING or isinstance(value, bool)
            or (isinstance(value, int) and -4096 < value < 4096)):
        _PAIRS[(key, value)] = encoded
    return encoded


def _attributes(tag: int, attributes: Mapping[str, Any]) -> bytes:
    return b"".join([_len_field(tag, _pair(k, v)) for k, v in attributes.items()
                     if v is not None])


def encode_span(span: FinishedSpan) -> bytes:
    parts = [b"\x0a\x10" + span.trace_id.to_bytes(16, "big"),
             b"\x12\x08" + span.span_id.to_bytes(8, "big")]
    if span.tracestate:
        parts.append(_string(0x1A, span.tracestate))
    if span.parent_span_id is not None:
        parts.append(b"\x22\x08" + span.parent_span_id.to_bytes(8, "big"))
    parts += [_string(0x2A, span.name), b"\x30" + _varint(span.kind),
              b"\x39" + struct.pack("<Q", span.start_ns), b"\x41" + struct.pack("<Q", span.end_ns),
              _attributes(0x4A, span.attributes)]
    if span.error is not None:
        parts.append(_len_field(0x7A, _string(0x12, span.error) + b"\x18\x02"))
    return b"".join(parts)


def export_request(spans: Iterable[FinishedSpan], resource: Mapping[str, Any], scope: str,
                   version: str) -> bytes:
    """One ``ExportTraceServiceRequest`` holding ``spans`` under one resource and scope."""
    scope_bytes = _len_field(0x0A, _string(0x0A, scope) + _string(0x12, version))
    spans_bytes = b"".join(_len_field(0x12, encode_span(s)) for s in spans)
    resource_spans = (_len_field(0x0A, _attributes(0x0A, resource))
                      + _len_field(0x12, scope_bytes + spans_bytes))
    return _len_field(0x0A, resource_spans)
