"""Per-request accounting -> UsageRecord, and what a request costs."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

import pytest

from inferplane.config import DeploymentConfig, HardwareConfig, PriceConfig
from inferplane.errors import (
    ContextLengthExceeded,
    EngineUnavailable,
    InferplaneError,
    InvalidRequest,
    ModelNotFound,
)
from inferplane.metering.meter import DeploymentMeter
from inferplane.metering.price_catalog import load_price_catalog
from inferplane.protocol.types import Finished, GenerationRequest, StreamEvent, Usage, UsageSink
from inferplane.providers.base import Provider
from inferplane.request_accounting import CLIENT_CLOSED, Accounting
from inferplane.routing.router import Target
from tests.unit.regions_fixture import REGIONS


class IdleProvider(Provider):
    """Just enough of a provider to build a routing Target; it never streams."""

    name = "idle"

    async def stream(
        self, request: GenerationRequest, meter: UsageSink
    ) -> AsyncGenerator[StreamEvent, None]:
        raise AssertionError("accounting never streams")
        yield  # pragma: no cover


def local(usd_per_hour: float = 3.6, count: int = 2) -> DeploymentConfig:
    return DeploymentConfig(
        name="local-gpu", model="m", provider="llamacpp",
        hardware=HardwareConfig(accelerator="h100", count=count, usd_per_hour=usd_per_hour),
    )


def priced(input_per_mtok: float = 0.15, output_per_mtok: float = 0.6,
           cached_input_per_mtok: float | None = None) -> DeploymentConfig:
    return DeploymentConfig(
        name="hosted", model="m", provider="openai", base_url="https://api.example.com/v1",
        price=PriceConfig(input_per_mtok=input_per_mtok, output_per_mtok=output_per_mtok,
                          cached_input_per_mtok=cached_input_per_mtok),
    )


def request_cost_usd(d: DeploymentConfig, usage: Usage, engine_seconds: float) -> float:
    return meter(d).cost_usd(usage, engine_seconds)


def meter(d: DeploymentConfig) -> DeploymentMeter:
    return DeploymentMeter(d, load_price_catalog(), REGIONS)


def accounting(deployment: DeploymentConfig | None = None, *, stream: bool = False
               ) -> Accounting:
    acct = Accounting(id="chatcmpl-1", endpoint="chat.completions", model="m", stream=stream)
    if deployment is not None:
        acct.target = Target(deployment, IdleProvider(deployment), meter(deployment))
    return acct


# -- prices ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usd_per_hour", "count", "engine_seconds", "expected"),
    [(3.6, 2, 0.5, 0.001), (2.0, 1, 3600.0, 2.0), (10.0, 8, 90.0, 2.0), (5.0, 4, 0.0, 0.0)],
)
def test_hardware_cost_is_hourly_price_times_engine_time(
    usd_per_hour: float, count: int, engine_seconds: float, expected: float
) -> None:
    cost = request_cost_usd(local(usd_per_hour, count), Usage(1000, 1000), engine_seconds)
    assert cost == pytest.approx(expected)


def test_hardware_cost_ignores_token_counts() -> None:
    d = local()
    assert request_cost_usd(d, Usage(0, 0), 2.0) == request_cost_usd(d, Usage(10_000, 5_000), 2.0)


def test_token_price_per_million() -> None:
    d = priced(input_per_mtok=0.15, output_per_mtok=0.6)
    assert request_cost_usd(d, Usage(1_000_000, 0), 99.0) == pytest.approx(0.15)
    assert request_cost_usd(d, Usage(0, 1_000_000), 0.0) == pytest.approx(0.6)
    expected = (2000 * 0.15 + 500 * 0.6) / 1e6
    assert request_cost_usd(d, Usage(2000, 500), 1.0) == pytest.approx(expected)


def test_cached_input_tokens_cost_the_cached_price_when_there_is_one() -> None:
    d = priced(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
    cost = request_cost_usd(d, Usage(1000, 100, cached_tokens=600), 0.0)
    assert cost == pytest.approx((400 * 2.0 + 600 * 0.5 + 100 * 8.0) / 1e6)
    no_discount = priced(input_per_mtok=2.0, output_per_mtok=8.0)
    assert request_cost_usd(no_discount, Usage(1000, 100, cached_tokens=600), 0.0) == (
        pytest.approx((1000 * 2.0 + 100 * 8.0) / 1e6))


def test_price_wins_over_hardware_when_both_are_set() -> None:
    d = DeploymentConfig(
        name="both", model="m", provider="openai",
        hardware=HardwareConfig(usd_per_hour=1000.0), price=PriceConfig(output_per_mtok=1.0),
    )
    assert request_cost_usd(d, Usage(10, 1_000_000), 3600.0) == pytest.approx(1.0)


def test_no_price_and_no_hardware_is_free() -> None:
    d = DeploymentConfig(name="free", model="m", provider="openai")
    assert request_cost_usd(d, Usage(1000, 1000), 10.0) == 0.0


# -- records ---------------------------------------------------------------------------------


def test_finished_local_request_record() -> None:
    acct = accounting(local(usd_per_hour=3.6, count=2), stream=True)
    acct.started(10)
    acct.delta(1)
    acct.delta(1)
    acct.finished(Finished("stop", Usage(11, 7), engine_seconds=0.5))

    rec = acct.record(200)

    assert rec.id == "chatcmpl-1"
    assert rec.endpoint == "chat.completions"
    assert rec.model == "m"
    assert rec.deployment == "local-gpu"
    assert rec.provider == "llamacpp"
    assert rec.prompt_tokens == 11  # Finished is the final word
    assert rec.completion_tokens == 7  # not the number of deltas
    assert rec.engine_seconds == 0.5
    assert rec.cost_usd == pytest.approx(3.6 * 2 * 0.5 / 3600)
    assert rec.status == 200
    assert rec.error_type is None
    assert rec.finish_reason == "stop"
    assert rec.stream is True


def test_finished_priced_request_record() -> None:
    acct = accounting(priced(input_per_mtok=2.0, output_per_mtok=8.0))
    acct.finished(Finished("length", Usage(1000, 250), engine_seconds=12.0))
    rec = acct.record(200)
    assert rec.cost_usd == pytest.approx((1000 * 2.0 + 250 * 8.0) / 1_000_000)
    assert rec.finish_reason == "length"
    assert rec.deployment == "hosted"
    assert rec.provider == "openai"


def test_cut_short_counts_one_token_per_delta() -> None:
    acct = accounting(priced(input_per_mtok=1.0, output_per_mtok=1.0), stream=True)
    acct.started(40)
    for _ in range(3):
        acct.delta(1)

    rec = acct.record(CLIENT_CLOSED, "client_disconnected")

    assert CLIENT_CLOSED == 499
    assert rec.status == 499
    assert rec.completion_tokens == 3
    assert rec.prompt_tokens == 40
    assert rec.finish_reason is None
    assert rec.error_type == "client_disconnected"
    assert rec.cost_usd == pytest.approx((40 + 3) / 1_000_000)


def test_cut_short_before_any_text() -> None:
    rec = accounting(priced()).record(CLIENT_CLOSED, "client_disconnected")
    assert rec.completion_tokens == 0
    assert rec.ttft_ms is None
    assert rec.cost_usd == 0.0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidRequest("bad"), "invalid_request_error"),
        (InvalidRequest("bad type", param="n", code="invalid_type"), "invalid_type"),
        (ContextLengthExceeded("too long"), "context_length_exceeded"),
        (ModelNotFound("nope"), "model_not_found"),
        (EngineUnavailable("down"), "engine_unavailable"),
        (InferplaneError("boom"), "api_error"),
        ("client_disconnected", "client_disconnected"),
        (None, None),
    ],
)
def test_error_type(error: InferplaneError | str | None, expected: str | None) -> None:
    status = error.status if isinstance(error, InferplaneError) else 499
    rec = accounting().record(status, error)
    assert rec.error_type == expected
    assert rec.status == status


def test_error_before_routing_has_no_deployment_and_no_cost() -> None:
    rec = accounting().record(404, ModelNotFound("nope"))
    assert rec.deployment is None
    assert rec.provider is None
    assert rec.cost_usd == 0.0


def test_ttft_is_none_without_deltas() -> None:
    acct = accounting(local())
    acct.finished(Finished("stop", Usage(5, 0), 0.1))
    rec = acct.record(200)
    assert rec.ttft_ms is None
    assert rec.latency_ms >= 0


def test_ttft_is_the_first_delta_and_within_latency() -> None:
    acct = accounting(local())
    acct.start = time.perf_counter() - 0.05
    acct.delta(1)
    first = acct.first_token_at
    acct.delta(1)
    assert acct.first_token_at == first  # later deltas do not move it
    acct.finished(Finished("stop", Usage(5, 2), 0.1))
    rec = acct.record(200)
    assert rec.ttft_ms is not None
    assert 50 <= rec.ttft_ms <= rec.latency_ms


def test_record_round_trips_through_a_dict() -> None:
    acct = accounting(priced())
    acct.delta(1)
    acct.finished(Finished("stop", Usage(3, 1), 0.0))
    rec = acct.record(200)
    assert type(rec).from_dict(rec.to_dict()) == rec
