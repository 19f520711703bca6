"""Evaluation suites: parsing with every problem located, each check kind, grading, scoring,
and the suite shipped for the built-in model."""

from __future__ import annotations

from importlib.resources import files

import pytest

from inferplane.governance.evaluation import (
    CHECKS,
    Check,
    ItemResult,
    SuiteError,
    failed,
    grade,
    judge_checks,
    parse_suite,
    score,
)

HEADER = '{"suite": "s", "version": "2", "threshold": 0.5}\n'


def one_check(check: str) -> Check:
    suite = parse_suite(HEADER + '{"id": "a", "prompt": "p", "checks": [' + check + "]}\n")
    return suite.items[0].checks[0]


@pytest.mark.parametrize(("check", "answer", "passed"), [
    ('{"exact": "Paris"}', "  Paris\n", True),
    ('{"exact": "Paris"}', "Paris, France", False),
    ('{"exact": "paris", "ignore_case": true}', "PARIS", True),
    ('{"contains": "cold"}', "It is cold.", True),
    ('{"contains": "Cold"}', "It is cold.", False),
    ('{"regex": "^\\\\s*five"}', " five, six", True),
    ('{"regex": "^five"}', " four, five", False),
    ('{"number": 7, "tolerance": 0}', "Ten minus three equals 7.", True),
    ('{"number": 7, "tolerance": 0}', "It equals 10.", False),
    ('{"number": 3.14, "tolerance": 0.01}', "about 3,141", True),
    ('{"number": 1}', "no digits here", False),
    ('{"json_schema": {"type": "object", "required": ["name"]}}', '{"name": "x"}', True),
    ('{"json_schema": {"type": "object", "required": ["name"]}}', "```json\n{\"name\": 1}\n```",
     True),
    ('{"json_schema": {"type": "object", "required": ["name"]}}', '{"nom": "x"}', False),
    ('{"json_schema": {"type": "object"}}', "not json", False),
])
def test_each_check_kind(check: str, answer: str, passed: bool) -> None:
    c = one_check(check)
    assert CHECKS[c.kind](c, answer).passed is passed


def test_an_item_passes_only_when_every_check_does() -> None:
    suite = parse_suite(HEADER + '{"id": "a", "prompt": "p", "checks": '
                        '[{"contains": "a"}, {"contains": "b"}]}\n')
    assert grade(suite.items[0], "a b").passed
    assert not grade(suite.items[0], "a").passed


def test_a_judge_check_takes_its_verdict_and_fails_without_one() -> None:
    suite = parse_suite(HEADER + '{"id": "a", "prompt": "p", "checks": '
                        '[{"contains": "x"}, {"judge": "is polite"}]}\n')
    item = suite.items[0]
    assert list(judge_checks(item)) == [1]
    assert grade(item, "x", {1: True}).passed
    assert not grade(item, "x", {1: False}).passed
    assert not grade(item, "x").passed


def test_the_score_and_the_gate() -> None:
    suite = parse_suite(HEADER + "".join(
        f'{{"id": "i{n}", "prompt": "p", "checks": [{{"contains": "y"}}]}}\n' for n in range(4)))
    results = [grade(suite.items[0], "y"), grade(suite.items[1], "n"),
               failed(suite.items[2], "HTTP 503"), grade(suite.items[3], "y")]
    result = score(suite, "v1", results)
    assert (result.passed, result.total, result.score, result.gate_passed) == (2, 4, 0.5, True)
    assert result.summary()["failed"] == ["i1", "i2"]
    assert not score(suite, "v1", results[:3]).gate_passed  # 1 of 3 < 0.5
    assert not score(suite, "v1", []).gate_passed


def test_every_problem_of_a_suite_is_reported_with_its_line() -> None:
    text = ('{"suite": "s", "threshold": 2}\n'
            '{"id": "a", "checks": [{"contains": "x"}]}\n'
            'not json\n'
            '{"id": "b", "prompt": "p", "checks": [{"regex": "("}]}\n'
            '{"id": "c", "prompt": "p", "checks": [{"json_schema": {"type": 3}}]}\n'
            '{"id": "d", "prompt": "p", "checks": [{"contains": "x", "regex": "y"}]}\n'
            '{"id": "e", "prompt": "p", "checks": []}\n'
            '{"id": "f", "prompt": "p", "checks": [{"contains": "x"}]}\n'
            '{"id": "f", "prompt": "p", "checks": [{"contains": "x"}]}\n')
    with pytest.raises(SuiteError) as caught:
        parse_suite(text, "s.jsonl")
    message = caught.value.message
    for expected in ("s.jsonl:1: threshold", "s.jsonl:2: an item needs either",
                     "s.jsonl:3: not JSON", "s.jsonl:4: regex does not compile",
                     "s.jsonl:5: json_schema is not a valid", "s.jsonl:6: a check names exactly",
                     "s.jsonl:7: an item needs \"checks\"", "s.jsonl:9: the id 'f' is used"):
        assert expected in message
    assert "8 problem(s)" in message


def test_a_suite_needs_its_header() -> None:
    with pytest.raises(SuiteError, match="the first line must name the suite"):
        parse_suite('{"id": "a", "prompt": "p", "checks": [{"contains": "x"}]}\n')


def test_the_shipped_suite_for_the_builtin_model_parses() -> None:
    text = files("inferplane").joinpath("data/evals/builtin-smoke.jsonl").read_text()
    suite = parse_suite(text)
    assert suite.name == "builtin-smoke" and len(suite.items) == 15
    assert 0 < suite.threshold < 1
    assert isinstance(grade(suite.items[0], "4"), ItemResult)
