"""Traces: when tracing is on, the GenAI attribute mapping of a finished request, the request
span as a child of the client's trace context, attempt spans, the trace context handed to
upstream requests, sampling, prompts kept out unless content capture is on, and the OTLP
encoding (decoded with opentelemetry-proto's own classes)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as semconv

from inferplane.config import DeploymentConfig, ObserveConfig
from inferplane.ledger.record import UsageRecord
from inferplane.observe.genai import record_attributes, span_name
from inferplane.observe.otel import Tracer, resource
from inferplane.observe.otlp import CLIENT, SERVER, FinishedSpan, export_request
from inferplane.observe.sampling import Sampler, sampler
from inferplane.observe.span_export import BatchExporter
from inferplane.observe.trace_context import UPSTREAM_TRACE, with_trace
from inferplane.observe.tracing import build_tracer, enabled
from inferplane.protocol.types import GenerationRequest, Message, SamplingParams
from inferplane.request_accounting import Accounting
from inferplane.routing.router import Target

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
PROMPT = "the secret prompt"


def record(status: int = 200, error: str | None = None, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = dict(
        id="chatcmpl-1", ts=0.0, endpoint="chat.completions", model="small",
        deployment="d1", provider="openai", prompt_tokens=12, completion_tokens=5,
        cached_tokens=4, reasoning_tokens=2, ttft_ms=50.0, latency_ms=80.0, status=status,
        error_type=error, finish_reason="stop" if status == 200 else None, stream=False,
        engine_seconds=0.0, cost_usd=0.25, energy_j=3.0, co2_g=0.5, region="eu",
        tenant="acme", version="v2", routing_policy="cheapest",
        routing_reason='{"chosen":"d1"}', attempt_count=2, cache="miss")
    values.update(fields)
    return UsageRecord(**values)


def request(stream: bool = False) -> GenerationRequest:
    return GenerationRequest(
        id="chatcmpl-1", endpoint="chat.completions", model="small",
        params=SamplingParams(max_tokens=32, temperature=0.2, top_p=0.9),
        messages=(Message("user", PROMPT),), stream=stream)


def target(name: str = "d1") -> Target:
    deployment = DeploymentConfig(name=name, model="small", provider="openai",
                                  upstream_model="gpt-4o-mini", base_url="http://up")
    return cast(Target, SimpleNamespace(deployment=deployment))


class Exporter:
    """Keeps finished spans, as the OTLP exporter's queue would take them."""

    def __init__(self) -> None:
        self.spans: list[FinishedSpan] = []

    def export(self, span: FinishedSpan) -> None:
        self.spans.append(span)

    def shutdown(self) -> None:
        return None


@pytest.fixture
def exporter() -> Exporter:
    return Exporter()


def tracer(exporter: Exporter, capture: bool = False, ratio: float = 1.0) -> Tracer:
    return Tracer(exporter, Sampler(ratio, parent_based=True), capture)


@pytest.fixture(autouse=True)
def no_upstream_trace() -> Iterator[None]:
    token = UPSTREAM_TRACE.set(None)
    yield
    UPSTREAM_TRACE.reset(token)


def traced(exporter: Exporter, capture: bool = False, status: int = 200,
           error: str | None = None, headers: dict[str, str] | None = None
           ) -> dict[str, FinishedSpan]:
    """A request traced through two attempts (the first failing), by name."""
    tr = tracer(exporter, capture)
    acct = Accounting(id="chatcmpl-1", endpoint="chat.completions")
    acct.request = request()
    span = tr.request(acct, headers or {"traceparent": TRACEPARENT})
    first = span.attempt(target("d0"))
    first.end({"deployment": "d0", "outcome": "error", "error": "upstream_unreachable",
               "upstream_status": 503})
    second = span.attempt(target("d1"))
    second.end({"deployment": "d1", "outcome": "ok"})
    span.output("the secret answer", "stop")
    span.end(record(status, error), acct)
    return {s.name: s for s in exporter.spans}


def test_the_attribute_names_are_the_conventions() -> None:
    attrs = record_attributes(record(), "gpt-4o-mini")
    names = {getattr(semconv, n) for n in dir(semconv) if n.startswith("GEN_AI_")}
    assert {n for n in attrs if n.startswith("gen_ai.")} <= names
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "small"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert attrs[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-1"
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 4
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 2
    assert semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in attrs  # none written
    assert "error.type" not in attrs
    assert attrs["inferplane.deployment"] == "d1"
    assert attrs["inferplane.cost_usd"] == 0.25
    assert attrs["inferplane.attempts"] == 2
    assert span_name("completions", "small") == "text_completion small"
    assert span_name("embeddings", "e") == "embeddings e"


def test_a_request_that_reached_no_deployment_has_no_usage() -> None:
    attrs = record_attributes(record(401, "invalid_api_key", deployment=None, provider=None),
                              None)
    assert attrs["error.type"] == "invalid_api_key"
    assert not any(n.startswith(("gen_ai.usage", "gen_ai.provider", "gen_ai.response.id"))
                   for n in attrs)


def test_the_request_span_is_the_clients_child_and_attempts_its_children(
        exporter: Exporter) -> None:
    spans = traced(exporter)
    assert set(spans) == {"chat small", "attempt d0", "attempt d1"}
    top = spans["chat small"]
    assert top.kind == SERVER
    assert format(top.trace_id, "032x") == TRACE_ID
    assert top.parent_span_id is not None and format(top.parent_span_id, "016x") == PARENT_ID
    assert top.start_ns <= top.end_ns
    attrs = dict(top.attributes)
    assert attrs["gen_ai.request.max_tokens"] == 32
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.top_p"] == 0.9
    for name in ("d0", "d1"):
        child = spans[f"attempt {name}"]
        assert child.kind == CLIENT and child.trace_id == top.trace_id
        assert child.parent_span_id == top.span_id
        assert child.attributes["inferplane.deployment"] == name
    failed = spans["attempt d0"]
    assert failed.attributes["error.type"] == "upstream_unreachable"
    assert failed.attributes["inferplane.upstream_status"] == 503
    assert failed.error == "upstream_unreachable"
    assert spans["attempt d1"].attributes["inferplane.attempt.outcome"] == "ok"
    assert spans["attempt d1"].error is None
    assert top.error is None


def test_the_upstream_request_carries_the_attempts_trace_context(
        exporter: Exporter) -> None:
    tr = tracer(exporter)
    acct = Accounting(id="chatcmpl-1", endpoint="chat.completions")
    span = tr.request(acct, {"traceparent": TRACEPARENT, "tracestate": "vendor=1"})
    assert with_trace({"x": "1"}) == {"x": "1"}  # no attempt yet: nothing added
    attempt = span.attempt(target())
    headers = with_trace({"x": "1"})
    assert headers is not None and headers["x"] == "1"
    _, trace_id, span_id, _ = headers["traceparent"].split("-")
    assert trace_id == TRACE_ID
    assert headers["tracestate"] == "vendor=1"
    attempt.end({"outcome": "ok"})
    span.end(record(), acct)
    assert UPSTREAM_TRACE.get() is None  # what follows the request is not in its trace
    ids = {format(s.span_id, "016x") for s in exporter.spans if s.name == "attempt d1"}
    assert ids == {span_id}


def test_an_error_sets_error_type_and_status(exporter: Exporter) -> None:
    top = traced(exporter, status=503, error="upstream_unreachable")["chat small"]
    assert top.attributes["error.type"] == "upstream_unreachable"
    assert top.error == "upstream_unreachable"


def test_without_a_traceparent_the_request_starts_a_trace(exporter: Exporter) -> None:
    top = traced(exporter, headers={"user-agent": "x"})["chat small"]
    assert top.parent_span_id is None
    assert format(top.trace_id, "032x") != TRACE_ID and top.trace_id != 0


@pytest.mark.parametrize("value", ["garbage", f"00-{'0' * 32}-{PARENT_ID}-01",
                                   f"ff-{TRACE_ID}-{PARENT_ID}-01",
                                   f"00-{TRACE_ID}-{PARENT_ID}-01-extra"])
def test_an_invalid_traceparent_starts_a_new_trace(exporter: Exporter, value: str) -> None:
    top = traced(exporter, headers={"traceparent": value})["chat small"]
    assert top.parent_span_id is None and format(top.trace_id, "032x") != TRACE_ID


def test_a_client_that_did_not_sample_is_followed(exporter: Exporter) -> None:
    """parentbased: flag 00 from the client, nothing recorded, yet the upstream request
    carries the trace on (unsampled), so the trace stays whole downstream."""
    tr = tracer(exporter)
    acct = Accounting(id="chatcmpl-1", endpoint="chat.completions")
    span = tr.request(acct, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})
    attempt = span.attempt(target())
    carried = with_trace(None)
    assert carried is not None and carried["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert carried["traceparent"].endswith("-00")
    attempt.end({"outcome": "ok"})
    span.end(record(), acct)
    assert exporter.spans == []


def test_a_ratio_sampler_records_about_its_share_of_new_traces(exporter: Exporter) -> None:
    tr = tracer(exporter, ratio=0.25)
    for _ in range(4000):
        acct = Accounting(id="chatcmpl-1", endpoint="chat.completions")
        tr.request(acct, {}).end(record(), acct)
    assert 800 < len(exporter.spans) < 1200


@pytest.mark.parametrize(("env", "ratio", "parent_based"), [
    ({}, 1.0, True),
    ({"OTEL_TRACES_SAMPLER": "always_off"}, 0.0, False),
    ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
     0.1, True),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}, 1.0, False),
    ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, 1.0, True),
])
def test_the_sampler_the_environment_names(env: dict[str, str], ratio: float,
                                          parent_based: bool) -> None:
    assert sampler(env) == Sampler(ratio, parent_based)


def test_the_otlp_encoding_is_what_opentelemetry_proto_decodes(exporter: Exporter) -> None:
    spans = list(traced(exporter, capture=True, status=503, error="upstream_unreachable",
                        headers={"traceparent": TRACEPARENT, "tracestate": "v=1"}).values())
    body = export_request(spans, resource({"OTEL_SERVICE_NAME": "gw"}), "inferplane", "9.9")
    decoded = ExportTraceServiceRequest.FromString(body)
    (rs,) = decoded.resource_spans
    assert {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"] == "gw"
    (ss,) = rs.scope_spans
    assert (ss.scope.name, ss.scope.version) == ("inferplane", "9.9")
    by_name = {s.name: s for s in ss.spans}
    top = by_name["chat small"]
    assert top.trace_id.hex() == TRACE_ID and top.parent_span_id.hex() == PARENT_ID
    assert top.trace_state == "v=1" and top.kind == SERVER
    assert top.status.code == 2 and top.status.message == "upstream_unreachable"
    ours = next(s for s in spans if s.name == "chat small")
    assert (top.start_time_unix_nano, top.end_time_unix_nano) == (ours.start_ns, ours.end_ns)
    values = {a.key: a.value for a in top.attributes}
    assert set(values) == {k for k, v in ours.attributes.items() if v is not None}
    for key, value in ours.attributes.items():
        if value is None:
            continue
        kind = values[key].WhichOneof("value")
        got: Any = getattr(values[key], kind)
        if kind == "array_value":
            got = tuple(v.string_value for v in got.values)
            value = tuple(value)
        assert got == value, key
    assert by_name["attempt d0"].parent_span_id == top.span_id


def test_the_batch_exporter_sends_everything_queued_by_shutdown() -> None:
    sent: list[list[FinishedSpan]] = []
    batches = BatchExporter(lambda spans: sent.append(list(spans)), max_queue=100,
                            max_batch=8, delay_s=60)
    span = FinishedSpan(1, 2, None, "s", SERVER, 0, 1, {})
    for _ in range(120):
        batches.export(span)
    batches.shutdown()
    assert sum(map(len, sent)) == 100 and batches.dropped == 20
    assert max(map(len, sent)) <= 8


def test_content_is_exported_only_when_captured(exporter: Exporter) -> None:
    plain = traced(exporter)["chat small"]
    assert PROMPT not in str(plain.attributes)
    assert "gen_ai.input.messages" not in plain.attributes
    exporter.spans.clear()
    captured = dict(traced(exporter, capture=True)["chat small"].attributes)
    assert PROMPT in str(captured["gen_ai.input.messages"])
    assert "the secret answer" in str(captured["gen_ai.output.messages"])


@pytest.mark.parametrize(("tracing", "env", "on"), [
    (False, {}, False),
    (True, {}, True),
    (False, {"OTEL_TRACES_EXPORTER": "otlp"}, True),
    (False, {"OTEL_TRACES_EXPORTER": "console"}, True),
    (True, {"OTEL_TRACES_EXPORTER": "none"}, False),
    (True, {"OTEL_SDK_DISABLED": "true"}, False),
])
def test_when_tracing_is_on(tracing: bool, env: dict[str, str], on: bool) -> None:
    assert enabled(ObserveConfig(tracing=tracing), env) is on


def test_off_builds_nothing() -> None:
    assert build_tracer(ObserveConfig(), {}) is None


def test_off_neither_the_sdk_nor_the_span_modules_are_imported() -> None:
    """(FastAPI imports parts of OpenTelemetry itself; the tracing SDK is ours to load.)"""
    code = ("import sys; import inferplane.api.app, inferplane.generation, inferplane.gateway; "
            "from inferplane.config import default_config; "
            "from inferplane.observe.tracing import build_tracer; "
            "assert build_tracer(default_config().observe, {}) is None; "
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', "
            "'opentelemetry.exporter', 'inferplane.observe.otel', 'inferplane.observe.spans'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_kept_encodings_never_mix_values(exporter: Exporter,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Recurring attributes are encoded once and reused: spans with other values still decode
    to their own."""
    from inferplane.observe import otlp
    from inferplane.observe.genai import REPEATING

    monkeypatch.setattr(otlp, "REPEATING", set(REPEATING))
    monkeypatch.setattr(otlp, "_PAIRS", {})
    tr = tracer(exporter)
    for i, (deployment, tokens, error) in enumerate([("d1", 5, None), ("d2", 7, "timeout"),
                                                      ("d1", 5, None), ("d2", 9000, None)]):
        acct = Accounting(id=f"chatcmpl-{i}", endpoint="chat.completions")
        tr.request(acct, {}).end(record(id=f"chatcmpl-{i}", deployment=deployment,
                                        completion_tokens=tokens, error_type=error), acct)
    for _ in range(2):  # the second time from what was kept
        body = export_request(exporter.spans, {}, "inferplane", "1")
        decoded = ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0]
        for ours, span in zip(exporter.spans, decoded.spans, strict=True):
            values = {a.key: getattr(a.value, a.value.WhichOneof("value"))
                      for a in span.attributes}
            assert values["inferplane.deployment"] == ours.attributes["inferplane.deployment"]
            assert values["gen_ai.usage.output_tokens"] == ours.attributes[
                "gen_ai.usage.output_tokens"]
            assert values["inferplane.request.id"] == ours.attributes["inferplane.request.id"]
            assert values.get("error.type") == ours.attributes.get("error.type")
    assert otlp._PAIRS  # something was kept
