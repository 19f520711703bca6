"""Running an evaluation suite through a gateway: each item is a real request to the model,
pinned to the version under evaluation (``x-inferplane-version``), metered and recorded like any
other; judge checks ask a judge model through the same gateway. The grading is
``evaluation.py``'s (pure)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from inferplane.governance.evaluation import (
    Check,
    EvaluationResult,
    Item,
    ItemResult,
    Suite,
    failed,
    grade,
    judge_checks,
    score,
)
from inferplane.providers.http_client import ClientError, Pool
from inferplane.routing.request import VERSION_HEADER

_VERDICT = re.compile(r"\b(PASS|FAIL)\b", re.IGNORECASE)
_JUDGE_PROMPT = (
    "You grade an answer against a criterion. Reply with one word: PASS if the answer meets "
    "the criterion, FAIL otherwise.\n\nCriterion: {criterion}\n\nQuestion: {question}\n\n"
    "Answer: {answer}\n\nVerdict:")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the suite's requests go: a gateway, the model name and the version to pin."""

    base_url: str  # e.g. http://127.0.0.1:8080 (no /v1)
    model: str
    version: str
    api_key: str | None = None
    judge_model: str | None = None
    timeout_s: float = 120.0


class _Client:
    def __init__(self, target: Target, pool: Pool) -> None:
        self.target = target
        self.pool = pool

    async def answer(self, body: dict[str, Any], pin: str | None) -> tuple[str, str | None]:
        """The answer's text and the version that served it."""
        endpoint = "chat/completions" if "messages" in body else "completions"
        headers = {"content-type": "application/json"}
        if pin is not None:
            headers[VERSION_HEADER] = pin
        if self.target.api_key:
            headers["authorization"] = f"Bearer {self.target.api_key}"
        url = f"{self.target.base_url.rstrip('/')}/v1/{endpoint}"
        response = await asyncio.wait_for(
            self.pool.request("POST", url, orjson.dumps(body), headers), self.target.timeout_s)
        data = await asyncio.wait_for(response.read(), self.target.timeout_s)
        response.release()
        if response.status != 200:
            raise ClientError(f"HTTP {response.status}: {_message(data)}")
        choice = orjson.loads(data)["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
        return text or "", response.headers.get(VERSION_HEADER)


def _message(data: bytes) -> str:
    try:
        return str(orjson.loads(data)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return data[:200].decode(errors="replace")


def request_body(suite: Suite, item: Item, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "temperature": suite.temperature,
                            "max_tokens": item.max_tokens or suite.max_tokens}
    if item.prompt is not None:
        body["prompt"] = item.prompt
    else:
        body["messages"] = [dict(m) for m in item.messages]
    return body


async def _judge(client: _Client, item: Item, answer: str,
                 checks: Mapping[int, Check]) -> dict[int, bool]:
    model = client.target.judge_model
    if model is None:
        return {}
    question = item.prompt if item.prompt is not None else item.messages[-1]["content"]
    verdicts = {}
    for index, check in checks.items():
        prompt = _JUDGE_PROMPT.format(criterion=check.value, question=question, answer=answer)
        text, _ = await client.answer({"model": model, "temperature": 0, "max_tokens": 4,
                                       "messages": [{"role": "user", "content": prompt}]}, None)
        verdicts[index] = judged(text)
    return verdicts


def judged(text: str) -> bool:
    """A judge's verdict: the first PASS or FAIL in its answer (none: failed).

    >>> judged("PASS."), judged("Verdict: fail"), judged("I cannot tell")
    (True, False, False)
    """
    found = _VERDICT.search(text)
    return found is not None and found.group(1).upper() == "PASS"


async def _run_item(client: _Client, suite: Suite, item: Item) -> ItemResult:
    target = client.target
    try:
        answer, served = await client.answer(request_body(suite, item, target.model),
                                             target.version)
        if served != target.version:
            return failed(item, f"served by version {served!r}, not {target.version!r}")
        checks = judge_checks(item)
        if checks and target.judge_model is None:
            return failed(item, "a judge check needs a judge model (--judge MODEL)")
        return grade(item, answer, await _judge(client, item, answer, checks))
    except (ClientError, OSError, TimeoutError, KeyError, IndexError, TypeError,
            orjson.JSONDecodeError) as exc:
        return failed(item, f"{type(exc).__name__}: {exc}")


async def run_suite(suite: Suite, target: Target, concurrency: int = 4) -> EvaluationResult:
    """Every item of ``suite`` through the gateway, ``concurrency`` at a time."""
    pool = Pool()
    gate = asyncio.Semaphore(concurrency)
    client = _Client(target, pool)

    async def one(item: Item) -> ItemResult:
        async with gate:
            return await _run_item(client, suite, item)

    try:
        results = await asyncio.gather(*(one(item) for item in suite.items))
    finally:
        await pool.close()
    return score(suite, target.version, results)
