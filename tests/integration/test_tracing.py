"""Traces from a real gateway: the official openai SDK sends a request with a W3C
``traceparent``; the gateway exports its spans over OTLP/HTTP to a receiver the test runs, and
passes the trace on to the fake upstream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.upstream.process import UpstreamProcess

from .gateway_proc import GatewayProc, ledger_yaml, running_gateway
from .otlp_receiver import Received, attributes, otlp_receiver

UPSTREAM_KEY = "sk-upstream-traces"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
PROMPT = "Tell me about the lighthouse keeper's secret"


@dataclass
class Setup:
    gateway: GatewayProc
    up: UpstreamProcess
    received: Received

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="none", max_retries=0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root: Path = tmp_path_factory.mktemp("tracing")
    with UpstreamProcess("traced", api_key=UPSTREAM_KEY) as up, otlp_receiver() as (url, got):
        config = (
            ledger_yaml(root) +
            "models:\n  - {name: small, routing: {retry: {backoff_base_s: 0.01}}}\n"
            "deployments:\n"
            f"  - {{name: up1, model: small, provider: openai, base_url: '{up.url}/v1', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: gpt-4o-mini, "
            "price: {input_per_mtok: 1000, output_per_mtok: 1000}}\n"
            "observe: {tracing: true}\n")
        env = {"UPSTREAM_KEY": UPSTREAM_KEY, "OTEL_EXPORTER_OTLP_ENDPOINT": url,
               "OTEL_SERVICE_NAME": "inferplane-test", "OTEL_BSP_SCHEDULE_DELAY": "50"}
        with running_gateway(root, config, env=env) as gateway:
            yield Setup(gateway, up, got)


def trace_of(received: Received, trace_id: str, count: int) -> list[Span]:
    spans = received.wait(lambda spans: sum(s.trace_id.hex() == trace_id for s in spans)
                          >= count)
    return [s for s in spans if s.trace_id.hex() == trace_id]


def named(spans: list[Span], prefix: str) -> list[Span]:
    return [s for s in spans if s.name.startswith(prefix)]


def test_a_request_is_a_span_in_the_clients_trace(setup: Setup) -> None:
    setup.up.reset()
    reply = setup.client().chat.completions.create(
        model="small", messages=[{"role": "user", "content": PROMPT}], max_tokens=16,
        temperature=0.5, top_p=0.8,
        extra_headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    spans = trace_of(setup.received, TRACE_ID, 2)
    (top,) = named(spans, "chat small")
    assert top.parent_span_id.hex() == PARENT_ID
    assert top.kind == Span.SPAN_KIND_SERVER
    attrs = attributes(top.attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "small"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.id"] == reply.id
    assert attrs["gen_ai.response.finish_reasons"] == (reply.choices[0].finish_reason,)
    assert reply.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert attrs["gen_ai.request.max_tokens"] == 16
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.request.top_p"] == 0.8
    assert attrs["inferplane.deployment"] == "up1"
    assert attrs["inferplane.attempts"] == 1
    assert attrs["inferplane.cost_usd"] > 0
    assert "error.type" not in attrs
    resource = next(r for r, s in setup.received.spans if s.span_id == top.span_id)
    assert resource["service.name"] == "inferplane-test"

    (attempt,) = named(spans, "attempt ")
    assert attempt.parent_span_id == top.span_id
    assert attempt.kind == Span.SPAN_KIND_CLIENT
    assert attributes(attempt.attributes)["inferplane.attempt.outcome"] == "ok"

    (seen,) = setup.up.requests()
    _, trace_id, parent_id, _ = seen["headers"]["traceparent"].split("-")
    assert (trace_id, parent_id) == (TRACE_ID, attempt.span_id.hex())

    assert not any(PROMPT.encode() in raw for raw in setup.received.raw)  # no content


def test_a_retried_request_has_a_span_per_attempt(setup: Setup) -> None:
    setup.up.reset()
    setup.up.add_faults({"kind": "status", "status": 503})
    trace_id = "1" * 32
    stream = setup.client().chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hi"}], max_tokens=8,
        stream=True, extra_headers={"traceparent": f"00-{trace_id}-{'2' * 16}-01"})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    spans = trace_of(setup.received, trace_id, 3)
    (top,) = named(spans, "chat small")
    assert attributes(top.attributes)["inferplane.attempts"] == 2
    failed, ok = sorted(named(spans, "attempt "), key=lambda s: s.start_time_unix_nano)
    assert attributes(failed.attributes)["error.type"] and failed.status.code == 2  # ERROR
    assert attributes(ok.attributes)["inferplane.attempt.outcome"] == "ok"
    assert {s.parent_span_id for s in (failed, ok)} == {top.span_id}
    sent = [r["headers"]["traceparent"].split("-")[2] for r in setup.up.requests()]
    assert sent == [failed.span_id.hex(), ok.span_id.hex()]


def test_a_refused_request_is_traced_with_its_error(setup: Setup) -> None:
    trace_id = "3" * 32
    with pytest.raises(openai.NotFoundError):
        setup.client().chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"traceparent": f"00-{trace_id}-{'4' * 16}-01"})
    (top,) = trace_of(setup.received, trace_id, 1)
    assert top.name == "chat nope"
    assert attributes(top.attributes)["error.type"]
    assert top.status.code == 2
