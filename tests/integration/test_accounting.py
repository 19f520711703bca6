"""Every token accounted, end to end: mixed concurrent traffic through a real gateway (the
embedded engine plus fake upstreams with prices), each ledger record checked against a hand
computation, the engine's energy split checked against its counter, and the Prometheus
counters against the records."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.upstream.process import UpstreamProcess, upstreams

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway

KEY = "sk-upstream-secret-accounting"
DATA = Path(__file__).resolve().parents[2] / "src" / "inferplane" / "data"
M = 1e6


def regions() -> dict[str, Any]:
    return dict(yaml.safe_load((DATA / "regions.yaml").read_text()))


def list_price(vendor: str, model: str) -> dict[str, Any]:
    catalog = yaml.safe_load((DATA / "prices.yaml").read_text())
    return next(m for m in catalog["vendors"][vendor]["models"] if m["model"] == model)


def config(root: Path, up1: UpstreamProcess, up2: UpstreamProcess) -> str:
    hosted = ("provider: openai, api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1, "
              "base_url: '{url}/v1'")
    return (
        ledger_yaml(root)
        + "models:\n  - name: local\n  - name: tiered\n  - name: listed\n  - name: silent\n"
        "deployments:\n"
        "  - {name: local-gemma, model: local, provider: llamacpp, region: eu-north-1,\n"
        "     engine: {model: 'builtin:gemma-3-270m', parallel: 4, context: 512},\n"
        "     hardware: {accelerator: cpu, count: 1, usd_per_hour: 0.36}}\n"
        # a negotiated price with cache, reasoning and a long-context tier (cheap to reach)
        f"  - {{name: tiered-1, model: tiered, {hosted.format(url=up1.url)}, region: eu-west-1,\n"
        "     price: {input_per_mtok: 1.0, output_per_mtok: 4.0, cached_input_per_mtok: 0.1,\n"
        "             reasoning_per_mtok: 2.0,\n"
        "             tiers: [{above_input_tokens: 8, input_per_mtok: 3.0}]}}\n"
        # the catalog's list price, by naming the vendor of a proxy URL
        f"  - {{name: listed-1, model: listed, provider: openai, api_key: 'env:UPSTREAM_KEY',\n"
        f"     base_url: '{up1.url}/v1', vendor: openai, upstream_model: gpt-4o-mini,\n"
        "     region: us-east-1}\n"
        # an upstream that reports no usage: tokens estimated from the text
        f"  - {{name: silent-1, model: silent, {hosted.format(url=up2.url)}, region: mars-1,\n"
        "     price: {input_per_mtok: 10.0, output_per_mtok: 20.0}}\n"
    )


@pytest.fixture(scope="module")
def ups() -> Iterator[list[UpstreamProcess]]:
    with upstreams(2, api_key=KEY, args=["--cached-tokens", "2", "--reasoning-tokens", "3"]
                   ) as two:
        two[1].configure(omit_usage=True)
        yield two


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, ups: list[UpstreamProcess]
            ) -> Iterator[GatewayProc]:
    root = Path(tmp_path_factory.mktemp("accounting"))
    with running_gateway(root, config(root, *ups), env={"UPSTREAM_KEY": KEY}) as gw:
        yield gw


PROMPTS = ["Say hi.", "What is a token? Answer in a sentence, please, with some detail.",
           "Name three colours.", "Count from one to five, slowly and carefully, in words."]


def send_mixed_traffic(gateway: GatewayProc) -> list[str]:
    """Concurrent requests to every model, streamed and not; their request ids."""
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    ids: list[str] = []
    lock = threading.Lock()

    def one(model: str, prompt: str, stream: bool) -> None:
        messages: Any = [{"role": "user", "content": prompt}]
        if stream:
            with client.chat.completions.with_streaming_response.create(
                    model=model, messages=messages, max_tokens=12, stream=True,
                    stream_options={"include_usage": True}) as raw:
                for _ in raw.iter_lines():
                    pass
                rid = raw.headers["x-request-id"]
        else:
            raw_reply = client.chat.completions.with_raw_response.create(
                model=model, messages=messages, max_tokens=12)
            raw_reply.parse()
            rid = raw_reply.headers["x-request-id"]
        with lock:
            ids.append(rid)

    jobs = [(model, prompt, i % 2 == 0)
            for i, (model, prompt) in enumerate(
                (m, p) for m in ("local", "tiered", "listed", "silent") for p in PROMPTS)]
    threads = [threading.Thread(target=one, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(ids) == len(jobs)
    return ids


def expected_cost(row: dict[str, Any]) -> float:
    """The cost, by hand, from the record's tokens and the prices in the config and catalog."""
    p, c = int(row["prompt_tokens"]), int(row["completion_tokens"])
    cached, reasoning = int(row["cached_tokens"]), int(row["reasoning_tokens"])
    if row["deployment"] == "local-gemma":
        return 0.36 * float(row["engine_seconds"]) / 3600
    if row["deployment"] == "tiered-1":
        input_rate = 3.0 if p > 8 else 1.0
        return ((p - cached) * input_rate + cached * 0.1 + (c - reasoning) * 4.0
                + reasoning * 2.0) / M
    if row["deployment"] == "listed-1":
        lp = {k: float(v) for k, v in list_price("openai", "gpt-4o-mini").items()
              if k in ("input", "cached_input", "output")}
        return ((p - cached) * lp["input"] + cached * lp["cached_input"] + c * lp["output"]) / M
    assert row["deployment"] == "silent-1"
    return (p * 10.0 + c * 20.0) / M


def footprint(region: str) -> tuple[float, float, float, float]:
    """(grid gCO2/kWh, PUE, WUE, grid water L/kWh) read straight from the data file."""
    data = regions()
    entry = data["regions"].get(region, {"zone": "WORLD"})
    zone = data["zones"][entry["zone"]]
    operator = data["operators"].get(entry.get("operator"), {})
    d = {k: v["value"] for k, v in data["defaults"].items()}
    water = zone.get("electricity_water_l_per_kwh", d["electricity_water_l_per_kwh"])
    return (zone["gco2_per_kwh"], operator.get("pue", d["pue"]),
            operator.get("wue_l_per_kwh", d["wue_l_per_kwh"]),
            water["value"] if isinstance(water, dict) else water)


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def records(gateway: GatewayProc) -> list[dict[str, Any]]:
    ids = send_mixed_traffic(gateway)
    return [gateway.ledger_row(rid) for rid in ids]


def test_every_record_costs_what_a_hand_computation_says(records: list[dict[str, Any]]) -> None:
    for row in records:
        assert row["status"] == 200, row
        assert row["cost_usd"] == pytest.approx(expected_cost(row), rel=1e-9, abs=1e-15), row
    methods = {r["deployment"]: r["cost_method"] for r in records}
    assert methods == {"local-gemma": "hardware", "tiered-1": "deployment",
                       "listed-1": "catalog", "silent-1": "deployment"}
    tiers = {r["prompt_tokens"] > 8 for r in records if r["deployment"] == "tiered-1"}
    assert tiers == {True, False}  # both sides of the tier were exercised
    assert all(r["cached_tokens"] == 2 and r["reasoning_tokens"] == 3
               for r in records if r["deployment"] == "tiered-1")


def test_usage_source_says_where_tokens_came_from(records: list[dict[str, Any]]) -> None:
    for row in records:
        if row["deployment"] == "silent-1":
            assert row["usage_source"] == "estimated"
            assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        else:
            assert row["usage_source"] == "reported"


def test_energy_method_carbon_and_water_per_record(records: list[dict[str, Any]]) -> None:
    for row in records:
        local = row["deployment"] == "local-gemma"
        assert row["energy_method"] == ("modelled" if local else "estimated"), row
        assert row["energy_j"] > 0
        grid, pue, wue, water = footprint(row["region"])
        kwh = row["energy_j"] / 3.6e6
        assert row["co2_g"] == pytest.approx(kwh * pue * grid, rel=1e-9)
        assert row["water_l"] == pytest.approx(kwh * (wue + pue * water), rel=1e-9)


def test_engine_energy_split_adds_up_to_its_counter(
        gateway: GatewayProc, records: list[dict[str, Any]]) -> None:
    """Every joule the engine's counter gave to requests is in exactly one record."""
    engine = gateway.engine()
    local = [r["energy_j"] for r in gateway.ledger_rows() if r["deployment"] == "local-gemma"]
    assert engine["energy_charged_j"] == pytest.approx(sum(local), rel=1e-9)
    assert engine["energy_idle_j"] > 0


def test_prometheus_counters_match_the_records(
        gateway: GatewayProc, records: list[dict[str, Any]]) -> None:
    text = httpx.get(gateway.url + "/metrics", timeout=10).text
    rows = gateway.ledger_rows()
    for deployment in ("local-gemma", "tiered-1", "listed-1", "silent-1"):
        mine = [r for r in rows if r["deployment"] == deployment]
        labels = {"deployment": deployment}
        assert metric_sum(text, "inferplane_cost_usd_total", **labels) == pytest.approx(
            sum(r["cost_usd"] for r in mine), rel=1e-9, abs=1e-15)
        assert metric_sum(text, "inferplane_energy_joules_total", **labels) == pytest.approx(
            sum(r["energy_j"] for r in mine), rel=1e-9)
        assert metric_sum(text, "inferplane_tokens_total", kind="completion", **labels) == sum(
            r["completion_tokens"] for r in mine)
        assert metric_sum(text, "inferplane_requests_total", status="200", **labels) == len(mine)
    assert re.search(r'inferplane_co2_grams_total\{.*deployment="listed-1"', text)


def test_histograms_and_engine_gauges_match_the_records(
        gateway: GatewayProc, records: list[dict[str, Any]]) -> None:
    """One duration per record; the engine's prefix-cache counters are its records' prompt
    and cached tokens; at rest nothing runs or waits."""
    text = httpx.get(gateway.url + "/metrics", timeout=10).text
    rows = gateway.ledger_rows()
    for deployment in ("local-gemma", "tiered-1", "listed-1", "silent-1"):
        mine = [r for r in rows if r["deployment"] == deployment]
        labels = {"deployment": deployment}
        assert metric_sum(text, "inferplane_request_duration_seconds_count", **labels) == len(
            mine)
        assert metric_sum(text, "inferplane_request_duration_seconds_sum", **labels) == (
            pytest.approx(sum(r["latency_ms"] for r in mine) / 1000, rel=1e-9))
        assert metric_sum(text, "inferplane_attempts_total", outcome="ok", **labels) == len(mine)
    local = [r for r in rows if r["deployment"] == "local-gemma"]
    engine = {"deployment": "local-gemma"}
    assert metric_sum(text, "inferplane_engine_prefix_cache_queries_total", **engine) == sum(
        r["prompt_tokens"] for r in local)
    assert metric_sum(text, "inferplane_engine_prefix_cache_hits_total", **engine) == sum(
        r["cached_tokens"] for r in local)
    for gauge in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        assert f'inferplane_engine_{gauge}{{deployment="local-gemma"}} 0.0' in text, gauge


def test_report_totals_equal_the_sum_of_the_records(
        gateway: GatewayProc, records: list[dict[str, Any]]) -> None:
    result = subprocess.run(
        [str(BIN / "inferplane"), "report", "--json", "--by", "deployment",
         "--config", str(gateway.config)], capture_output=True, text=True, timeout=60,
        check=True)
    report = json.loads(result.stdout)
    rows = gateway.ledger_rows()
    totals = report["totals"]
    assert totals["requests"] == len(rows)
    for field in ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens"):
        assert totals[field] == sum(r[field] for r in rows), field
    for field in ("cost_usd", "energy_j", "co2_g", "water_l"):
        assert totals[field] == pytest.approx(sum(r[field] or 0.0 for r in rows), rel=1e-9), field
    by_key = {g["key"]: g for g in report["groups"]}
    for deployment in ("local-gemma", "tiered-1", "listed-1", "silent-1"):
        assert by_key[deployment]["cost_usd"] == pytest.approx(
            sum(r["cost_usd"] for r in rows if r["deployment"] == deployment), rel=1e-9)
