"""One model's semantic cache in process, with a small deterministic encoder (bag of words):
a paraphrase answered once the threshold is learned, verification that keeps a wrong answer's
question apart, fail-open embeddings, deployment embeddings, and no semantic work for a model
without it."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import numpy.typing as npt
import pytest

from inferplane.cache.embedder import EMBEDDING, JUDGING, Caller, ModelEmbedder, normalised
from inferplane.cache.entry import Entry, Saved, encode
from inferplane.cache.judge import Judge
from inferplane.cache.question import Question
from inferplane.cache.semantic import DIGEST, SemanticCache
from inferplane.cache.semantic_store import MemorySemanticStore
from inferplane.cache.service import ResponseCache
from inferplane.config import (
    CacheConfig,
    Config,
    DeploymentConfig,
    ModelConfig,
    SemanticCacheConfig,
)
from inferplane.errors import ServiceUnavailable
from inferplane.protocol.types import (
    Embeddings,
    GenerationRequest,
    Message,
    SamplingParams,
    Usage,
)
from inferplane.tenancy.keys import Scope as KeyScope
from inferplane.tenancy.records import ApiKey, Principal

ACME = Caller(Principal(ApiKey(id="k1", tenant="acme", name="k", scopes=frozenset(
    {KeyScope.INFERENCE})), None), "request-1")


class Words:
    """Texts as normalised bags of their words (a word's vector from its hash)."""

    async def embed(self, texts: list[str], caller: Caller | None = None
                    ) -> npt.NDArray[np.float32]:
        rows = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().strip("?.!").split():
                rows[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        return normalised(rows.tolist())


def answer(text: str) -> Entry:
    return Entry("k", text, "stop", Usage(5, 2), Saved(0.01), 1.0)


def cache(delta: float = 0.5) -> SemanticCache:
    settings = SemanticCacheConfig(enabled=True, max_false_hit_rate=delta, verify_rate=0,
                                   compare="exact")
    return SemanticCache(settings, MemorySemanticStore(ttl_s=60, max_entries=100), Words(),
                         draw=random.Random(1).random)


async def ask(sc: SemanticCache, text: str, upstream: str | None, verify: bool = False
              ) -> str:
    """One request: the kept answer on a hit, else the upstream's (verified and kept)."""
    probe = await sc.lookup(Question(text, "scope"), ACME, verify)
    assert probe is not None
    if probe.hit is not None:
        return "hit: " + probe.hit.text
    assert upstream is not None
    await sc.learn(probe, answer(upstream))
    return upstream


async def test_a_paraphrase_is_answered_once_verification_taught_the_threshold() -> None:
    sc = cache()
    await ask(sc, "what is the capital of france", "Paris.")
    assert await ask(sc, "what is the capital of france please", "Paris.") == "Paris."
    for extra in ("now", "today", "again", "quickly", "kindly", "then"):
        await ask(sc, f"what is the capital of france {extra}", "Paris.", verify=True)
    assert await ask(sc, "tell me what is the capital of france", None) == "hit: Paris."


async def test_a_wrong_kept_answer_keeps_the_new_question_and_stops_answering_it() -> None:
    sc = cache()
    await ask(sc, "what is the capital of france", "Paris.")
    for extra in ("now", "today", "again", "quickly", "kindly", "then"):
        await ask(sc, f"what is the capital of france {extra}", "Paris.", verify=True)
    question = "what is the capital of france in 1500"
    assert await ask(sc, question, "Paris (and before it, Tours).", verify=True) == (
        "Paris (and before it, Tours).")
    assert (await sc.store.stats()).entries == 2  # the new question is kept apart
    assert await ask(sc, question, None) == "hit: Paris (and before it, Tours)."


async def test_failing_embeddings_are_a_miss() -> None:
    class Down:
        async def embed(self, texts: list[str], caller: Caller | None = None
                        ) -> npt.NDArray[np.float32]:
            raise ServiceUnavailable("no embeddings")

    sc = SemanticCache(SemanticCacheConfig(enabled=True), MemorySemanticStore(60, 10), Down())
    assert await sc.lookup(Question("anything", "scope"), None) is None


class Scripted:
    """The gateway's own requests, as far as the cache sees them: what it asked, and a
    scripted answer (the routing and ledger behind them are tested end to end in
    tests/integration/test_semantic_cache.py)."""

    def __init__(self, verdicts: list[str] | None = None) -> None:
        self.verdicts = verdicts or []
        self.asked: list[tuple[str, str, Caller | None, str]] = []

    async def embed(self, model: str, texts: list[str], caller: Caller | None,
                    purpose: str) -> Embeddings:
        self.asked.append((model, " | ".join(texts), caller, purpose))
        return Embeddings([[3.0, 4.0] for _ in texts], 2)

    async def answer(self, req: GenerationRequest, caller: Caller | None, purpose: str) -> str:
        self.asked.append((req.model, req.messages[-1].content, caller, purpose))
        assert req.params.temperature == 0.0 and req.messages[0].role == "system"
        return self.verdicts.pop(0)


async def test_model_embeddings_are_the_gateways_own_requests_for_the_caller() -> None:
    own = Scripted()
    rows = await ModelEmbedder("vectors", own).embed(["a", "b"], ACME)
    assert rows.ravel().tolist() == pytest.approx([0.6, 0.8, 0.6, 0.8])
    assert own.asked == [("vectors", "a | b", ACME, EMBEDDING)]


def judged(verdicts: list[str]) -> tuple[SemanticCache, Scripted]:
    own = Scripted(verdicts)
    settings = SemanticCacheConfig(enabled=True, max_false_hit_rate=0.5, verify_rate=0,
                                   compare="judge", judge="referee")
    return SemanticCache(settings, MemorySemanticStore(ttl_s=60, max_entries=100), Words(),
                         draw=random.Random(1).random, judge=Judge("referee", own)), own


async def test_a_judge_model_decides_whether_the_kept_answer_was_right() -> None:
    sc, own = judged(["SAME", "DIFFERENT", "I cannot tell"])
    await ask(sc, "what is the capital of france", "Paris.")
    await ask(sc, "what is the capital of france now", "It is Paris.", verify=True)
    await ask(sc, "what is the capital of france in 1500", "Tours, for a while.", verify=True)
    await ask(sc, "what is the capital of france today", "Paris, today.", verify=True)
    first = (await Words().embed(["what is the capital of france"]))[0]
    kept = await sc.store.nearest("scope", first)
    assert kept is not None and kept.similarity == pytest.approx(1.0)
    # the first verdict counted right, the second wrong, the unreadable third not at all
    assert sorted(right for _, right in kept.own) == [False, True]
    model, asked, caller, purpose = own.asked[0]
    assert (model, caller, purpose) == ("referee", ACME, JUDGING)
    assert asked.index("now") < asked.index("It is Paris.") < asked.index("Paris.")
    # the wrong answer's question is kept apart, and so is the one without a verdict
    assert (await sc.store.stats()).entries == 3


async def test_identical_answers_need_no_judge() -> None:
    sc, own = judged([])
    await ask(sc, "what is the capital of france", "Paris.")
    await ask(sc, "what is the capital of france now", "Paris.", verify=True)
    assert own.asked == []


def test_a_model_without_a_semantic_cache_does_no_semantic_work() -> None:
    config = Config(
        models=[ModelConfig(name="m", cache=CacheConfig())],
        deployments=[DeploymentConfig(name="d", model="m", provider="openai",
                                      base_url="http://127.0.0.1:1/v1")])
    responses = ResponseCache.build(config)
    req = GenerationRequest(id="r", endpoint="chat.completions", model="m",
                            params=SamplingParams(temperature=0.0),
                            messages=(Message("user", "hello"),))
    turn = responses.turn(req, ACME, {})
    assert turn is not None and turn.question is None
    assert all(m.semantic is None for m in responses.models)


def test_semantic_entries_carry_their_own_digest() -> None:
    data = encode(Entry(DIGEST, "x", "stop", Usage(1, 1), Saved(), 0.0))
    assert b'"digest":"semantic"' in data


