"""Evaluation suites: a versioned JSONL file of prompts and the checks their answers must pass,
and the score a model version gets. Pure: no I/O (the runner is ``eval_runner``).

A suite file's first line names it; every other line is one item::

    {"suite": "builtin-smoke", "version": "1", "threshold": 0.6, "max_tokens": 24}
    {"id": "capital", "prompt": "The capital of France is", "checks": [{"contains": "Paris"}]}
    {"id": "json", "messages": [{"role": "user", "content": "..."}],
     "checks": [{"json_schema": {"type": "object", "required": ["name"]}}]}

Checks (an item passes when all of its checks do): ``exact`` (the whole answer, stripped),
``contains``, ``regex`` (a search), ``json_schema`` (the answer parses as JSON, a fenced block
allowed, and validates), ``number`` with ``tolerance`` (the first number in the answer is within
it), and ``judge`` (a criterion a judge model decides; the runner asks it). ``ignore_case: true``
beside a text check compares without case. The suite passes when the share of items passed
reaches its ``threshold``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import orjson

from inferplane.errors import InvalidRequest

_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class SuiteError(InvalidRequest):
    """A suite file that cannot be run: every problem, one per line, with its line number."""

    code = "invalid_suite"


@dataclass(frozen=True, slots=True)
class Check:
    kind: str
    value: Any
    ignore_case: bool = False
    tolerance: float = 0.0

    def describe(self) -> str:
        shown = self.value if isinstance(self.value, str) else orjson.dumps(self.value).decode()
        return f"{self.kind} {shown[:60]}"


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    checks: tuple[Check, ...]
    prompt: str | None = None
    messages: tuple[Mapping[str, Any], ...] = ()
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    version: str
    threshold: float
    items: tuple[Item, ...]
    max_tokens: int = 64
    temperature: float = 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    check: Check
    passed: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ItemResult:
    id: str
    passed: bool
    answer: str
    outcomes: tuple[Outcome, ...] = ()
    error: str | None = None  # the request failed: the item counts as failed


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """What a version scored on a suite; ``gate_passed`` when it reached the threshold."""

    suite: str
    suite_version: str
    version: str
    passed: int
    total: int
    threshold: float
    items: tuple[ItemResult, ...] = field(default=())

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def gate_passed(self) -> bool:
        return self.total > 0 and self.score >= self.threshold

    def summary(self) -> dict[str, Any]:
        """The result without its answers: what a registry and a model card keep."""
        return {"suite": self.suite, "suite_version": self.suite_version,
                "version": self.version, "passed": self.passed, "total": self.total,
                "score": round(self.score, 4), "threshold": self.threshold,
                "gate_passed": self.gate_passed,
                "failed": [r.id for r in self.items if not r.passed]}


# -- checks ------------------------------------------------------------------------------------


def _text(check: Check, answer: str) -> tuple[str, str]:
    value = str(check.value)
    return (value.lower(), answer.lower()) if check.ignore_case else (value, answer)


def _exact(check: Check, answer: str) -> Outcome:
    value, text = _text(check, answer.strip())
    return Outcome(check, text == value.strip())


def _contains(check: Check, answer: str) -> Outcome:
    value, text = _text(check, answer)
    return Outcome(check, value in text)


def _regex(check: Check, answer: str) -> Outcome:
    flags = re.IGNORECASE if check.ignore_case else 0
    return Outcome(check, re.search(str(check.value), answer, flags) is not None)


def _json_schema(check: Check, answer: str) -> Outcome:
    fenced = _FENCE.search(answer)
    try:
        document = orjson.loads((fenced.group(1) if fenced else answer).strip())
    except orjson.JSONDecodeError as exc:
        return Outcome(check, False, f"not JSON: {exc}")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(check.value).iter_errors(document))
    return Outcome(check, error is None, "" if error is None else error.message)


def _number(check: Check, answer: str) -> Outcome:
    found = _NUMBER.search(answer)
    if found is None:
        return Outcome(check, False, "no number in the answer")
    got = float(found.group().replace(",", "."))
    return Outcome(check, abs(got - float(check.value)) <= check.tolerance, f"got {got:g}")


CHECKS: dict[str, Callable[[Check, str], Outcome]] = {
    "exact": _exact, "contains": _contains, "regex": _regex, "json_schema": _json_schema,
    "number": _number,
}
JUDGE = "judge"  # decided by a judge model: the runner supplies the verdict


def judge_checks(item: Item) -> dict[int, Check]:
    """The item's judge checks, by their place among its checks."""
    return {i: c for i, c in enumerate(item.checks) if c.kind == JUDGE}


def grade(item: Item, answer: str, verdicts: Mapping[int, bool] | None = None) -> ItemResult:
    """``answer`` checked against each of ``item``'s checks; a judge check takes its verdict
    from ``verdicts`` by its place (missing: failed)."""
    outcomes = []
    for i, check in enumerate(item.checks):
        if check.kind == JUDGE:
            verdict = (verdicts or {}).get(i)
            outcomes.append(Outcome(check, bool(verdict),
                                    "" if verdict is not None else "no verdict"))
        else:
            outcomes.append(CHECKS[check.kind](check, answer))
    return ItemResult(item.id, all(o.passed for o in outcomes), answer, tuple(outcomes))


def failed(item: Item, error: str) -> ItemResult:
    return ItemResult(item.id, False, "", (), error)


def score(suite: Suite, version: str, results: Sequence[ItemResult]) -> EvaluationResult:
    return EvaluationResult(suite.name, suite.version, version,
                            sum(r.passed for r in results), len(results), suite.threshold,
                            tuple(results))


# -- the suite file ----------------------------------------------------------------------------


def parse_suite(text: str, file: str = "<suite>") -> Suite:
    """The suite in JSONL ``text``; raises :class:`SuiteError` with every problem."""
    problems: list[str] = []
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise SuiteError(f"{file}: the suite is empty")
    rows: list[tuple[int, dict[str, Any]]] = []
    for n, line in lines:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            problems.append(f"{file}:{n}: not JSON ({exc})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{file}:{n}: a line must be a JSON object")
            continue
        rows.append((n, row))
    header = rows[0][1] if rows and "suite" in rows[0][1] else None
    if header is None:
        problems.append(f"{file}:1: the first line must name the suite: "
                        '{"suite": NAME, "version": V, "threshold": 0.8}')
        header = {}
    items, seen = [], set()
    for n, row in rows[1:] if header else rows:
        item = _item(row, f"{file}:{n}", problems)
        if item is not None:
            if item.id in seen:
                problems.append(f"{file}:{n}: the id '{item.id}' is used twice")
            seen.add(item.id)
            items.append(item)
    threshold = header.get("threshold", 1.0)
    if not _is_number(threshold) or not 0 <= threshold <= 1:
        problems.append(f"{file}:1: threshold must be a number from 0 to 1")
    if header and not items:
        problems.append(f"{file}: the suite has no items")
    if problems:
        raise SuiteError(f"{file}: {len(problems)} problem(s)\n" + "\n".join(problems))
    return Suite(str(header["suite"]), str(header.get("version", "1")), float(threshold),
                 tuple(items), int(header.get("max_tokens", 64)),
                 float(header.get("temperature", 0.0)))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _item(row: dict[str, Any], where: str, problems: list[str]) -> Item | None:
    before = len(problems)
    item_id, prompt, messages = row.get("id"), row.get("prompt"), row.get("messages")
    if not isinstance(item_id, str) or not item_id:
        problems.append(f"{where}: an item needs an \"id\" (a string)")
    if (prompt is None) == (messages is None):
        problems.append(f"{where}: an item needs either \"prompt\" or \"messages\"")
    elif prompt is not None and not isinstance(prompt, str):
        problems.append(f"{where}: \"prompt\" must be a string")
    elif messages is not None and not (isinstance(messages, list) and messages and all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)):
        problems.append(f"{where}: \"messages\" must be a list of {{role, content}} objects")
    raw_checks = row.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        problems.append(f"{where}: an item needs \"checks\": a list of at least one check")
        raw_checks = []
    checks = [c for raw in raw_checks if (c := _check(raw, where, problems)) is not None]
    max_tokens = row.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        problems.append(f"{where}: \"max_tokens\" must be a positive integer")
    if len(problems) > before:
        return None
    return Item(str(item_id), tuple(checks), prompt, tuple(messages or ()), max_tokens)


def _check(raw: Any, where: str, problems: list[str]) -> Check | None:
    kinds = [k for k in (raw if isinstance(raw, dict) else {}) if k in CHECKS or k == JUDGE]
    if len(kinds) != 1:
        known = ", ".join([*CHECKS, JUDGE])
        problems.append(f"{where}: a check names exactly one of {known}: {orjson.dumps(raw)!r}")
        return None
    kind = kinds[0]
    value = raw[kind]
    if kind == "json_schema":
        try:
            jsonschema.Draft202012Validator.check_schema(value)
        except jsonschema.exceptions.SchemaError as exc:
            problems.append(f"{where}: json_schema is not a valid JSON schema: {exc.message}")
            return None
    elif kind == "number":
        if not _is_number(value) or not _is_number(raw.get("tolerance", 0)):
            problems.append(f"{where}: number and tolerance must be numbers")
            return None
    elif kind == "regex":
        try:
            re.compile(str(value))
        except re.error as exc:
            problems.append(f"{where}: regex does not compile: {exc}")
            return None
    elif not isinstance(value, str) or not value:
        problems.append(f"{where}: {kind} takes a non-empty string")
        return None
    return Check(kind, value, bool(raw.get("ignore_case", False)), float(raw.get("tolerance", 0.0)))

