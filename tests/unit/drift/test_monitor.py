"""The drift monitor with its worker thread: the queue, its drops, per-model and per-tenant
windows, the reset. The embeddings come from a small deterministic encoder defined here (the
integration test and the benchmark use the shipped one)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from inferplane.config import DriftConfig
from inferplane.drift.monitor import DriftMonitor
from inferplane.ledger.record import UsageRecord


class HashedWords:
    """Each word hashed into one of 64 dimensions, normalised: prompts sharing words are
    close."""

    name = "hashed-words"
    dimensions = 64

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, hashlib.blake2b(word.encode(), digest_size=2).digest()[0] % 64] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: np.ndarray = out / np.maximum(norms, 1e-9)
        return unit


def record(model: str = "chat", tenant: str | None = None, prompt: int = 10,
           finish: str | None = "stop", status: int = 200) -> UsageRecord:
    return UsageRecord(id="r", ts=0.0, endpoint="chat.completions", model=model,
                       deployment="d", provider="openai", prompt_tokens=prompt,
                       completion_tokens=12, ttft_ms=1.0, latency_ms=2.0, status=status,
                       error_type=None, finish_reason=finish, stream=False,
                       engine_seconds=0.0, cost_usd=0.0, tenant=tenant)


ENGLISH = ["how do I {} my garden in spring", "what is the best way to {} a small room",
           "why does my cat {} at night", "can you explain how to {} bread at home"]
CODE = ["def {}(x):\n    return x + 1", "function {}() {{ return [1, 2]; }}",
        "SELECT {} FROM t WHERE id = 1;", "for (int i = 0; i < n; i++) {{ {}(i); }}"]
VERBS = ["clean", "paint", "sleep", "bake", "plan", "light", "heat", "fix"]


def config(**kw: object) -> DriftConfig:
    base: dict[str, object] = {"enabled": True, "reference_size": 60, "window_size": 60,
                               "min_samples": 40, "evaluate_every": 20, "alpha": 0.001}
    return DriftConfig(**{**base, **kw})  # type: ignore[arg-type]


def canonical(name: str) -> str | None:
    return {"chat": "chat", "chat-alias": "chat", "other": "other"}.get(name)


def feed(monitor: DriftMonitor, templates: list[str], n: int, start: int = 0,
         model: str = "chat", tenant: str | None = None) -> None:
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        text = templates[i % len(templates)].format(VERBS[int(rng.integers(len(VERBS)))])
        monitor.offer(record(model, tenant, prompt=int(rng.integers(8, 20))), text, "Sure.")


def run(monitor: DriftMonitor) -> None:
    assert monitor.wait_idle(60)


def by_feature(monitor: DriftMonitor, tenant: str | None = None) -> dict[str, bool]:
    return {r.feature: r.drifted for r in monitor.reports("chat") if r.tenant == tenant}


def test_a_stable_workload_is_stable_and_a_shift_to_code_is_drift() -> None:
    monitor = DriftMonitor(config(), canonical, encoder=HashedWords, seed=1)
    monitor.start()
    try:
        feed(monitor, ENGLISH, 140)
        run(monitor)
        stable = by_feature(monitor)
        assert stable and not any(stable.values()), stable
        feed(monitor, CODE, 60, start=1000, model="chat-alias")  # an alias is its model
        run(monitor)
        shifted = by_feature(monitor)
        assert shifted["script"] and shifted["topic"], shifted
        assert monitor.processed == 200 and monitor.embedded == 200 and monitor.dropped == 0
    finally:
        monitor.stop()


def test_reset_accepts_the_new_traffic() -> None:
    monitor = DriftMonitor(config(), canonical, encoder=HashedWords, seed=2)
    monitor.start()
    try:
        feed(monitor, ENGLISH, 60)
        feed(monitor, CODE, 60, start=60)
        run(monitor)
        assert by_feature(monitor)["script"]
        assert monitor.reset("chat") == 1
        rows = monitor.reports("chat")
        assert rows and all(r.p_value is None for r in rows)  # the new current window is empty
        feed(monitor, CODE, 60, start=500)
        run(monitor)
        assert not any(by_feature(monitor).values())
    finally:
        monitor.stop()


def test_tenants_get_rows_of_their_own_once_they_have_traffic_enough() -> None:
    monitor = DriftMonitor(config(max_tenants=1), canonical, encoder=None, seed=3)
    monitor.start()
    try:
        feed(monitor, ENGLISH, 80, tenant="acme")
        feed(monitor, ENGLISH, 20, start=80, tenant="small")
        feed(monitor, ENGLISH, 20, start=200, tenant="late")  # over max_tenants: model only
        run(monitor)
        tenants = {r.tenant for r in monitor.reports()}
        assert tenants == {None, "acme"}
        assert {r.feature for r in monitor.reports()} == {
            "prompt_tokens", "completion_tokens", "finish_reason", "outcome", "refusal",
            "script"}  # embeddings off: no topic test
    finally:
        monitor.stop()


def test_a_full_queue_drops_and_counts_and_unknown_models_are_skipped() -> None:
    monitor = DriftMonitor(config(queue_size=5), canonical, encoder=None)
    feed(monitor, ENGLISH, 8)  # the worker is not started: 5 wait, 3 are dropped
    assert monitor.dropped == 3
    monitor.offer(record(model="nobody"), "hi", "")  # still dropped: the queue is full
    monitor.start()
    try:
        run(monitor)
        assert monitor.processed == 5
        monitor.offer(record(model="nobody"), "hi", "")
        run(monitor)
        assert monitor.processed == 5  # not one of ours
    finally:
        monitor.stop()


def test_sample_rate_looks_at_a_share() -> None:
    monitor = DriftMonitor(config(sample_rate=0.25, queue_size=10_000), canonical,
                           encoder=None, seed=4)
    feed(monitor, ENGLISH, 2000)
    assert 400 <= len(monitor._queue) <= 600


def test_a_failing_encoder_turns_the_topic_test_off() -> None:
    def broken() -> HashedWords:
        raise ImportError("no weights")

    monitor = DriftMonitor(config(), canonical, encoder=broken)
    monitor.start()
    try:
        feed(monitor, ENGLISH, 40)
        run(monitor)
        assert monitor.embedded == 0 and monitor.processed == 40
        assert all(r.feature != "topic" for r in monitor.reports())
    finally:
        monitor.stop()


def test_a_pause_in_traffic_tests_the_last_samples_too() -> None:
    monitor = DriftMonitor(config(evaluate_every=20), canonical, encoder=None, seed=5)
    monitor.start()
    try:
        feed(monitor, ENGLISH, 60 + 47)  # 47: not a multiple of evaluate_every
        run(monitor)  # the catch-up after a second without traffic
        rows = monitor.reports("chat")
        assert rows and all(r.current_n == 47 for r in rows), rows
    finally:
        monitor.stop()
