"""The exact response cache: a hit against the direct upstream and against a miss through the
gateway, and what the lookup adds to a miss.

    python benchmarks/bench_cache.py [--rounds 3] [--out benchmarks/results]

Starts a fake OpenAI upstream (``tests/upstream``), its own Redis and one gateway serving three
models from that upstream: ``plain`` (no cache), ``mem`` (memory cache), ``red`` (Redis cache).
Requests are sequential over one keep-alive connection, non-streamed unless said, one of each
path in turn so that all see the same machine; medians are over every request.

- realistic: the upstream answers after 200 ms plus 10 ms per further token (a small hosted
  model): direct, through the gateway without a cache, a miss, a hit (memory, Redis), and a
  streamed hit's time to first byte;
- overhead: the upstream answers at once, so the gateway's own time shows: without a cache, a
  miss (memory, Redis), a hit;
- in process: the cache's work on a request (key, decision, lookup), without HTTP;
- semantic quality (``semantic_quality.py``): the semantic cache's learned threshold against
  fixed thresholds on labelled paraphrase pairs, tuning and held-out halves apart.

``--semantic-only`` reruns the last part alone and keeps the other results of cache.json.
Writes cache.json and cache.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common
from tests.integration.gateway_proc import ledger_yaml, running_gateway
from tests.services import running_redis
from tests.upstream.process import UpstreamProcess

import semantic_quality
from common import machine_info
from inferplane.cache.embedder import Caller
from inferplane.cache.entry import Entry, Saved, encode
from inferplane.cache.service import ResponseCache
from inferplane.config import CacheConfig, Config, DeploymentConfig, ModelConfig
from inferplane.protocol.types import GenerationRequest, Message, SamplingParams, Usage
from inferplane.tenancy.records import Principal

CALLER = Caller(Principal(None, None), "bench")  # open mode: no keys
QUESTION = "What does a lighthouse keeper do all night?"
HIT_PROMPT = f"{QUESTION} {'0' * 32}"  # every prompt has the same words, so the same answer time
# the semantic model's: the kept question, the paraphrases that teach its threshold, and those
# that probe it (answers are the upstream's one fixed reply, so every verification finds the
# kept answer right)
TAUGHT = ["What does a keeper of a lighthouse do at night?",
          "What is a lighthouse keeper's job during the night?",
          "How does a lighthouse keeper spend the night?",
          "What work does a lighthouse keeper do overnight?",
          "At night, what does a lighthouse keeper do?",
          "What are a lighthouse keeper's nightly duties?"]
ASKED = ["What does a lighthouse keeper do through the night?",
         "What do lighthouse keepers do all night long?",
         "During the night, what does the lighthouse keeper do?"]
REPLY = "The keeper tends the lamp, winds the clockwork and logs the weather."
SEMANTIC = ("cache: {exact: false, semantic: {enabled: true, max_false_hit_rate: 0.5, "
            "verify_rate: 0, compare: exact}}")
Probe = Callable[[], float]  # one request; its latency (or TTFB) in ms


def _body(model: str, prompt: str, stream: bool = False) -> dict[str, Any]:
    return {"model": model, "temperature": 0, "max_tokens": 32, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}


def _post(client: httpx.Client, url: str, body: dict[str, Any], expect: str | None,
          headers: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    response = client.post(url, json=body, headers=headers)
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, response.text
    if expect is not None:
        assert response.headers["x-inferplane-cache"] == expect, response.headers
    return elapsed


def _semantic_hit(client: httpx.Client, url: str, asked: Iterator[str]) -> float:
    """The latency of a paraphrase answered from the semantic cache. The learned threshold
    sends some would-be hits upstream to verify them: those are asked again (not timed)."""
    for _ in range(50):
        start = time.perf_counter()
        response = client.post(url, json=_body("sem", next(asked)))
        elapsed = (time.perf_counter() - start) * 1000
        assert response.status_code == 200, response.text
        if response.headers["x-inferplane-cache"] == "hit-semantic":
            return elapsed
    raise AssertionError("the semantic cache never answered")


def _ttfb(client: httpx.Client, url: str, body: dict[str, Any]) -> float:
    start = time.perf_counter()
    with client.stream("POST", url, json=body) as response:
        assert response.headers["x-inferplane-cache"] == "hit-exact"
        first = None
        for _ in response.iter_raw():
            first = first or (time.perf_counter() - start) * 1000
    assert first is not None
    return first


def probes(client: httpx.Client, upstream: str, gateway: str, phase: str) -> dict[str, Probe]:
    chat = gateway + "/v1/chat/completions"
    asked = itertools.cycle(ASKED)

    def unique(model: str, expect: str | None) -> Probe:
        return lambda: _post(client, chat, _body(model, f"{QUESTION} {uuid.uuid4().hex}"), expect)

    out: dict[str, Probe] = {}
    if phase == "realistic":
        out["direct upstream"] = lambda: _post(client, upstream + "/v1/chat/completions",
                                               _body("echo-1", f"{QUESTION} {uuid.uuid4().hex}"),
                                               None)
    out["gateway, no cache"] = unique("plain", None)
    out["miss, memory"] = unique("mem", "miss")
    out["miss, redis"] = unique("red", "miss")
    out["semantic miss, memory"] = lambda: _post(  # embedded, then explored upstream
        client, chat, _body("sem", next(asked)), "miss", {"x-inferplane-cache": "verify"})
    out["hit, memory"] = lambda: _post(client, chat, _body("mem", HIT_PROMPT), "hit-exact")
    out["hit, redis"] = lambda: _post(client, chat, _body("red", HIT_PROMPT), "hit-exact")
    out["semantic hit, memory"] = lambda: _semantic_hit(client, chat, asked)
    if phase == "realistic":
        out["streamed hit TTFB, memory"] = lambda: _ttfb(
            client, chat, _body("mem", HIT_PROMPT, stream=True))
    return out


def run_phase(named: dict[str, Probe], rounds: int, per_round: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in named}
    for probe in named.values():  # warm-up: connections, first-use paths
        for _ in range(3):
            probe()
    for _ in range(rounds * per_round):  # one request of each in turn, so all share the noise
        for name, probe in named.items():
            samples[name].append(probe())
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = {"n": len(values), "p50_ms": statistics.median(values),
                     "p90_ms": values[int(len(values) * 0.9)], "mean_ms": statistics.fmean(values)}
    return out


def in_process(n: int = 20_000) -> dict[str, float]:
    """Microseconds the cache adds to a request in the gateway: the key and decision, then a
    memory lookup that misses or hits."""
    config = Config(
        models=[ModelConfig(name="mem", cache=CacheConfig())],
        deployments=[DeploymentConfig(name="d", model="mem", provider="openai",
                                      base_url="http://127.0.0.1:1/v1")])
    req = GenerationRequest(
        id="x", endpoint="chat.completions", model="mem",
        params=SamplingParams(max_tokens=64, temperature=0.0),
        messages=(Message("system", "You are terse." * 20), Message("user", HIT_PROMPT)))

    async def measure() -> dict[str, float]:
        cache = ResponseCache.build(config)
        start = time.perf_counter()
        for _ in range(n):
            turn = cache.turn(req, CALLER, {})
            assert turn is not None and await turn.lookup() is None
        miss_us = (time.perf_counter() - start) / n * 1e6
        turn = cache.turn(req, CALLER, {})
        assert turn is not None
        entry = Entry(turn.key.digest, "A lighthouse keeper keeps the light. " * 10, "stop",
                      Usage(40, 80), Saved(0.001), time.time())
        await turn.model.store.put(turn.key, encode(entry))
        start = time.perf_counter()
        for _ in range(n):
            turn = cache.turn(req, CALLER, {})
            assert turn is not None and await turn.lookup() is not None
        hit_us = (time.perf_counter() - start) / n * 1e6
        await cache.close()
        return {"key_and_miss_us": miss_us, "key_and_hit_us": hit_us}

    return asyncio.run(measure())


def gateway_config(root: Path, upstream: UpstreamProcess, redis_url: str) -> str:
    deployment = ("provider: openai, base_url: '" + upstream.url + "/v1', api_key: 'env:UP_KEY', "
                  "upstream_model: echo-1")
    models = {"plain": "", "mem": ", cache: {}", "red": ", cache: {backend: redis}",
              "sem": ", " + SEMANTIC}
    return (ledger_yaml(root, 250) + f"redis: {{url: '{redis_url}'}}\n" + "models:\n"
            + "".join(f"  - {{name: {m}{cache}}}\n" for m, cache in models.items())
            + "deployments:\n"
            + "".join(f"  - {{name: {m}-1, model: {m}, {deployment}}}\n" for m in models))


def measure(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp) / "redis") as redis_url, \
            UpstreamProcess("up", api_key="bench") as up:
        root = Path(tmp) / "gw"
        with running_gateway(root, gateway_config(root, up, redis_url),
                             env={"UP_KEY": "bench"}) as gateway, \
                httpx.Client(timeout=30, headers={"authorization": "Bearer bench"}) as client:
            up.configure(reply=REPLY)
            chat = gateway.url + "/v1/chat/completions"
            for model in ("mem", "red"):  # the entries the hits read
                client.post(chat, json=_body(model, HIT_PROMPT))
            for i, question in enumerate([QUESTION, *TAUGHT]):  # verified: a threshold learned
                _post(client, chat, _body("sem", question), "miss",
                      {"x-inferplane-cache": "verify"} if i else None)
                time.sleep(0.3)  # verification happens off the request's path
            time.sleep(0.2)
            up.configure(think_ms=200, token_delay_ms=10)
            realistic = run_phase(probes(client, up.url, gateway.url, "realistic"), rounds, 10)
            up.configure(think_ms=0, token_delay_ms=0)
            overhead = run_phase(probes(client, up.url, gateway.url, "overhead"), rounds, 100)
    return {"realistic": realistic, "overhead": overhead, "in_process": in_process()}


def markdown(data: dict[str, Any]) -> str:
    m, r = data["machine"], data["results"]
    lines = [
        "# Response cache", "",
        f"{m['date']}; {m['cpu_model']}, {m['cpu_cores']} cores; Python {m['python']}. One "
        "gateway process, sequential requests on one keep-alive connection, non-streamed unless "
        f"said, one request of each path in turn. Redis on loopback.", "",
    ]
    titles = {"realistic": "Upstream answering after 200 ms + 10 ms per further token",
              "overhead": "Upstream answering at once: the gateway's own time"}
    for phase, title in titles.items():
        rows = r[phase]
        lines += [f"## {title}", "", "| path | n | p50 ms | p90 ms | mean ms |",
                  "|---|---|---|---|---|"]
        lines += [f"| {name} | {v['n']} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | "
                  f"{v['mean_ms']:.2f} |" for name, v in rows.items()]
        lines.append("")
    real, over = r["realistic"], r["overhead"]
    lines += [
        "## Summary", "",
        f"- A memory hit answers in {real['hit, memory']['p50_ms']:.2f} ms (p50), "
        f"{real['direct upstream']['p50_ms'] / real['hit, memory']['p50_ms']:.0f}x faster than "
        f"the direct upstream ({real['direct upstream']['p50_ms']:.1f} ms) and "
        f"{real['miss, memory']['p50_ms'] / real['hit, memory']['p50_ms']:.0f}x faster than a "
        f"miss through the gateway ({real['miss, memory']['p50_ms']:.1f} ms); a Redis hit in "
        f"{real['hit, redis']['p50_ms']:.2f} ms.",
        f"- A semantic hit (a paraphrase, the shipped encoder in the gateway process) answers in "
        f"{real['semantic hit, memory']['p50_ms']:.2f} ms (p50), "
        f"{real['direct upstream']['p50_ms'] / real['semantic hit, memory']['p50_ms']:.1f}x "
        f"faster than the direct upstream; a semantic miss costs "
        f"{over['semantic miss, memory']['p50_ms'] - over['miss, memory']['p50_ms']:+.2f} ms "
        f"(p50, upstream answering at once) over an exact-cache miss: embedding the question.",
        f"- Lookup overhead on a miss (p50, upstream answering at once): memory "
        f"{over['miss, memory']['p50_ms'] - over['gateway, no cache']['p50_ms']:+.2f} ms, Redis "
        f"{over['miss, redis']['p50_ms'] - over['gateway, no cache']['p50_ms']:+.2f} ms against "
        f"the same gateway without a cache ({over['gateway, no cache']['p50_ms']:.2f} ms).",
        f"- In process: key, decision and a memory lookup take "
        f"{r['in_process']['key_and_miss_us']:.1f} µs on a miss and "
        f"{r['in_process']['key_and_hit_us']:.1f} µs on a hit (entry decoded).",
        "",
    ]
    if "semantic_quality" in data:
        lines += semantic_quality.markdown(data["semantic_quality"])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--semantic-only", action="store_true")
    args = parser.parse_args()
    if args.semantic_only:
        data = orjson.loads((args.out / "cache.json").read_bytes())
    else:
        data = {"machine": machine_info(), "rounds": args.rounds,
                "results": measure(args.rounds)}
    data["semantic_quality"] = {"machine": machine_info(), **semantic_quality.measure()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cache.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    (args.out / "cache.md").write_text(markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
