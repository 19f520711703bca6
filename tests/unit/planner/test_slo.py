"""SLO strings: the accepted forms and the one-line errors."""

from __future__ import annotations

import math

import pytest

from inferplane.planner.errors import PlannerError
from inferplane.planner.slo import Slo, format_seconds, parse_duration, parse_slo


def test_accepted_forms() -> None:
    assert parse_slo("ttft=1s,tpot=50ms") == Slo(1.0, 0.05, 99.0)
    assert parse_slo(" TTFT = 500ms , tpot=0.04 ") == Slo(0.5, 0.04, 99.0)
    assert parse_slo("tpot=20ms,p=50") == Slo(math.inf, 0.02, 50.0)
    assert parse_slo("ttft=2,p=p99").ttft_s == 2.0
    assert parse_duration("250us") == pytest.approx(250e-6)
    assert parse_duration("1.5m") == 90.0


@pytest.mark.parametrize("text", [
    "", "ttft", "ttft=fast", "ttft=1s,ttft=2s", "latency=1s", "ttft=1h", "tpot=-5ms",
    "ttft=1s,p=95", "ttft=0s",
])
def test_bad_slo_strings(text: str) -> None:
    with pytest.raises(PlannerError) as info:
        parse_slo(text)
    assert "\n" not in info.value.message


def test_describe_and_format() -> None:
    assert parse_slo("ttft=1s,tpot=50ms").describe() == "p99 TTFT <= 1s and TPOT <= 50ms"
    assert format_seconds(0.0005) == "0.5ms" and format_seconds(12.0) == "12s"
    assert format_seconds(math.inf) == "inf"
