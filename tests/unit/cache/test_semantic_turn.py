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

from inferplane.cache.embedder import DeploymentEmbedder, normalised
from inferplane.cache.entry import Entry, Saved, encode
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
    EmbeddingRequest,
    Embeddings,
    GenerationRequest,
    Message,
    SamplingParams,
    Usage,
)


class Words:
    """Texts as normalised bags of their words (a word's vector from its hash)."""

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
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
    probe = await sc.lookup(Question(text, "scope"), "acme", verify)
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
        async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
            raise ServiceUnavailable("no embeddings")

    sc = SemanticCache(SemanticCacheConfig(enabled=True), MemorySemanticStore(60, 10), Down())
    assert await sc.lookup(Question("anything", "scope"), None) is None


async def test_deployment_embeddings_fail_over_and_come_back_normalised() -> None:
    class Provider:
        def __init__(self, ok: bool) -> None:
            self.ok = ok
            self.asked: list[EmbeddingRequest] = []

        async def embed(self, request: EmbeddingRequest) -> Embeddings:
            self.asked.append(request)
            if not self.ok:
                raise ServiceUnavailable("down")
            return Embeddings([[3.0, 4.0] for _ in request.inputs], 2)

    first, second = Provider(False), Provider(True)
    embedder = DeploymentEmbedder("vectors", [first, second])
    rows = await embedder.embed(["a", "b"])
    assert rows.ravel().tolist() == pytest.approx([0.6, 0.8, 0.6, 0.8])
    assert first.asked[0].model == "vectors" and second.asked[0].inputs == ("a", "b")
    with pytest.raises(ServiceUnavailable):
        await DeploymentEmbedder("vectors", [first]).embed(["a"])


def test_a_model_without_a_semantic_cache_does_no_semantic_work() -> None:
    config = Config(
        models=[ModelConfig(name="m", cache=CacheConfig())],
        deployments=[DeploymentConfig(name="d", model="m", provider="openai",
                                      base_url="http://127.0.0.1:1/v1")])
    responses = ResponseCache.build(config)
    req = GenerationRequest(id="r", endpoint="chat.completions", model="m",
                            params=SamplingParams(temperature=0.0),
                            messages=(Message("user", "hello"),))
    turn = responses.turn(req, "acme", {})
    assert turn is not None and turn.question is None
    assert all(m.semantic is None for m in responses.models)


def test_semantic_entries_carry_their_own_digest() -> None:
    data = encode(Entry(DIGEST, "x", "stop", Usage(1, 1), Saved(), 0.0))
    assert b'"digest":"semantic"' in data


