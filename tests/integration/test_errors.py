"""Every error case answers in OpenAI's error format with the right status, and is recorded."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from .gateway_proc import GatewayProc

MSG = [{"role": "user", "content": "hi"}]


def post(gw: GatewayProc, body: Any, path: str = "/v1/chat/completions", **kw: Any
         ) -> httpx.Response:
    if isinstance(body, bytes | str):
        return httpx.post(gw.url + path, content=body, timeout=30, **kw)
    return httpx.post(gw.url + path, json=body, timeout=30, **kw)


def assert_openai_error(r: httpx.Response, status: int, param: str | None = None,
                        code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return dict(error)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "default"}, "messages"),
        ({"model": "default", "messages": "hi"}, "messages"),
        ({"model": "default", "messages": []}, "messages"),
        ({"model": "default", "messages": [{"role": "wizard", "content": "x"}]},
         "messages[0].role"),
        ({"model": "default", "messages": [{"role": "user", "content": 5}]},
         "messages[0].content"),
        ({"messages": MSG}, "model"),
        ({"model": "default", "messages": MSG, "temperature": "hot"}, "temperature"),
        ({"model": "default", "messages": MSG, "temperature": 2.5}, "temperature"),
        ({"model": "default", "messages": MSG, "top_p": -0.1}, "top_p"),
        ({"model": "default", "messages": MSG, "max_tokens": 0}, "max_tokens"),
        ({"model": "default", "messages": MSG, "max_tokens": "10"}, "max_tokens"),
        ({"model": "default", "messages": MSG, "max_tokens": True}, "max_tokens"),
        ({"model": "default", "messages": MSG, "n": 2}, "n"),
        ({"model": "default", "messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "default", "messages": MSG, "seed": 1.5}, "seed"),
        ({"model": "default", "messages": MSG, "stream": "yes"}, "stream"),
        ({"model": "default", "messages": MSG, "stream_options": {"include_usage": True}},
         "stream_options"),
    ],
)
def test_invalid_parameters_are_400(gateway: GatewayProc, body: Any, param: str) -> None:
    error = assert_openai_error(post(gateway, body), 400, param=param)
    assert error["type"] == "invalid_request_error"


def test_completions_needs_a_prompt(gateway: GatewayProc) -> None:
    assert_openai_error(post(gateway, {"model": "default"}, "/v1/completions"), 400, "prompt")


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", "\"text\""])
def test_malformed_json_is_400(gateway: GatewayProc, raw: bytes | str) -> None:
    assert_openai_error(post(gateway, raw), 400)


def test_unknown_model_is_404_through_the_sdk(gateway: GatewayProc) -> None:
    c = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        c.chat.completions.create(model="gpt-17", messages=MSG)  # type: ignore[arg-type]
    assert info.value.code == "model_not_found"


def test_body_over_the_limit_is_413(gateway: GatewayProc) -> None:
    big = {"model": "default", "messages": [{"role": "user", "content": "x" * 70_000}]}
    assert_openai_error(post(gateway, big), 413, code="payload_too_large")


def test_body_over_the_limit_without_content_length_is_413(gateway: GatewayProc) -> None:
    def chunks() -> Any:
        yield b'{"model": "default", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}]}'

    r = httpx.post(gateway.url + "/v1/chat/completions", content=chunks(), timeout=30)
    assert_openai_error(r, 413)


def test_prompt_longer_than_the_context_is_400(gateway: GatewayProc) -> None:
    long = " ".join(["history"] * 1200)  # context is 512 tokens per sequence in the tests
    r = post(gateway, {"model": "default", "messages": [{"role": "user", "content": long}]})
    error = assert_openai_error(r, 400, code="context_length_exceeded")
    assert "512" in error["message"]
    r = post(gateway, {"model": "default", "messages": MSG, "max_tokens": 600})
    assert_openai_error(r, 400, code="context_length_exceeded")


def test_unknown_route_and_wrong_method_are_json(gateway: GatewayProc) -> None:
    assert_openai_error(httpx.get(gateway.url + "/v1/nothing"), 404)
    assert_openai_error(httpx.get(gateway.url + "/v1/chat/completions"), 405)


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({"model": "nope", "messages": MSG}, 404, "model_not_found"),
        (b"{oops", 400, "invalid_request_error"),
        ({"model": "default", "messages": MSG, "top_p": 9}, 400, "invalid_request_error"),
        ({"model": "default", "messages": [{"role": "user", "content": "z" * 70_000}]}, 413,
         "payload_too_large"),
    ],
)
def test_errors_are_in_the_ledger(gateway: GatewayProc, body: Any, status: int,
                                  error_type: str) -> None:
    r = post(gateway, body)
    assert r.status_code == status
    row = gateway.ledger_row(r.headers["x-request-id"])
    assert (row["status"], row["error_type"]) == (status, error_type)
