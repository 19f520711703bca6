"""Where finished spans go: batched in a thread of their own and sent over OTLP/HTTP
(protobuf), or printed (the ``console`` exporter). The request path only appends to a bounded
queue; a full queue drops the span and counts it, as OpenTelemetry's batch processor does.

The environment variables are OpenTelemetry's: ``OTEL_BSP_SCHEDULE_DELAY`` (ms, 5000),
``OTEL_BSP_MAX_QUEUE_SIZE`` (2048), ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` (512) and, for OTLP,
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``_HEADERS``, ``_TIMEOUT`` (ms, 10000) and
``_COMPRESSION`` (``gzip`` or none). A refused export is retried with backoff when the
collector says to (429, 502, 503, 504), otherwise dropped with a warning.
"""

from __future__ import annotations

import gzip
import logging
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from inferplane.observe.otlp import FinishedSpan, export_request

log = logging.getLogger("inferplane")
RETRYABLE = frozenset({429, 502, 503, 504})
MAX_RETRIES = 5


class SpanSink(Protocol):
    def export(self, span: FinishedSpan) -> None: ...

    def shutdown(self) -> None: ...


def _env(env: Mapping[str, str], name: str, default: str) -> str:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>``."""
    return env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}",
                   env.get(f"OTEL_EXPORTER_OTLP_{name}", default)).strip()


def parse_pairs(text: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` with percent-encoded values (the ``OTEL_*_HEADERS`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` form).

    >>> parse_pairs("api-key=a%20b, team = ml ,bad")
    {'api-key': 'a b', 'team': 'ml'}
    """
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = urllib.parse.unquote(value.strip())
    return pairs


@dataclass
class OtlpHttp:
    """Posts export requests to an OTLP/HTTP endpoint."""

    endpoint: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    gzip: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OtlpHttp:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        if not endpoint:
            base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318").strip()
            endpoint = base.rstrip("/") + "/v1/traces"
        protocol = _env(env, "PROTOCOL", "http/protobuf")
        if protocol != "http/protobuf":
            log.warning("OTLP protocol %r is not supported: traces go over http/protobuf",
                        protocol)
        return cls(endpoint, parse_pairs(_env(env, "HEADERS", "")),
                   float(_env(env, "TIMEOUT", "10000")) / 1000,
                   _env(env, "COMPRESSION", "none").lower() == "gzip")

    def post(self, body: bytes) -> None:
        headers = {**self.headers, "Content-Type": "application/x-protobuf"}
        if self.gzip:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        delay = 1.0
        for attempt in range(MAX_RETRIES + 1):
            request = urllib.request.Request(self.endpoint, body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    answer.read()
                return
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRYABLE or attempt == MAX_RETRIES:
                    raise
                retry_after = exc.headers.get("Retry-After")
                wait = float(retry_after) if retry_after and retry_after.isdigit() else delay
            except (urllib.error.URLError, OSError):
                if attempt == MAX_RETRIES:
                    raise
                wait = delay
            time.sleep(wait)
            delay = min(delay * 2, 30.0)


class BatchExporter:
    """Spans queued by the request path, sent in batches by one thread."""

    def __init__(self, send: Callable[[Sequence[FinishedSpan]], None], *,
                 max_queue: int = 2048, max_batch: int = 512, delay_s: float = 5.0) -> None:
        self._send = send
        self._queue: deque[FinishedSpan] = deque()
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._delay_s = delay_s
        self._wake = threading.Condition()
        self._stopping = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="inferplane-span-export",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def otlp(cls, env: Mapping[str, str], resource: Mapping[str, Any], scope: str,
             version: str) -> BatchExporter:
        http = OtlpHttp.from_env(env)

        def send(spans: Sequence[FinishedSpan]) -> None:
            http.post(export_request(spans, resource, scope, version))

        return cls(send, max_queue=int(env.get("OTEL_BSP_MAX_QUEUE_SIZE", "2048")),
                   max_batch=int(env.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512")),
                   delay_s=float(env.get("OTEL_BSP_SCHEDULE_DELAY", "5000")) / 1000)

    def export(self, span: FinishedSpan) -> None:
        queue = self._queue
        if len(queue) >= self._max_queue:
            self.dropped += 1
            return
        queue.append(span)  # deque appends are atomic: no lock on the request path
        if len(queue) == self._max_batch:
            with self._wake:
                self._wake.notify()

    def shutdown(self) -> None:
        """Send what is queued, then stop the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._stopping and len(self._queue) < self._max_batch:
                    self._wake.wait(self._delay_s)
                stopping = self._stopping
            while self._queue:
                batch = [self._queue.popleft()
                         for _ in range(min(self._max_batch, len(self._queue)))]
                try:
                    self._send(batch)
                except Exception as exc:
                    log.warning("exporting %d span(s) failed: %s", len(batch), exc)
                if not stopping and len(self._queue) < self._max_batch:
                    break
            if stopping and not self._queue:
                return


class ConsoleExporter:
    """Each span as one JSON line on standard output (``OTEL_TRACES_EXPORTER=console``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def export(self, span: FinishedSpan) -> None:
        line = orjson.dumps({
            "trace_id": f"{span.trace_id:032x}", "span_id": f"{span.span_id:016x}",
            "parent_span_id": None if span.parent_span_id is None
            else f"{span.parent_span_id:016x}",
            "name": span.name, "kind": "server" if span.kind == 2 else "client",
            "start_ns": span.start_ns, "end_ns": span.end_ns, "error": span.error,
            "attributes": {k: v for k, v in span.attributes.items() if v is not None},
        })
        with self._lock:
            sys.stdout.buffer.write(line + b"\n")
            sys.stdout.flush()

    def shutdown(self) -> None:
        return None
