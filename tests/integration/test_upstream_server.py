"""The fake upstream, driven by the official SDKs (OpenAI, Anthropic) and raw HTTP (Gemini).

These prove the fake faithful enough that adapters tested against it work against the real
services: the SDKs parse every response, stream and error it produces.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import orjson
import pytest

from tests.upstream.process import UpstreamProcess

KEY = "sk-upstream-test"
ANTHROPIC_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
WEATHER: Any = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
CLAUDE_WEATHER: Any = {"name": "get_weather", "description": "Weather for a city",
                       "input_schema": {"type": "object",
                                        "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def server() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("up", api_key=KEY) as up:
        yield up


@pytest.fixture
def up(server: UpstreamProcess) -> UpstreamProcess:
    """The shared server with no faults, log or counters, and its default settings."""
    server.reset()
    server.configure(cached_tokens=0, reasoning_tokens=0, think_ms=0, token_delay_ms=0,
                     models=[])
    return server


def oai(up: UpstreamProcess, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=up.url + "/v1", api_key=KEY, max_retries=0, **kw)


def claude(up: UpstreamProcess, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=up.url, api_key=KEY, max_retries=0, **kw)


def gemini(up: UpstreamProcess, method: str, body: dict[str, Any], model: str = "gemini-x",
           query: str = "", key: str | None = KEY) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    return httpx.post(f"{up.url}/v1beta/models/{model}:{method}{query}", json=body,
                      headers=headers)


def user(text: str) -> Any:
    return {"role": "user", "content": text}


# ---- OpenAI -----------------------------------------------------------------------------------

def test_chat_completion_echoes_and_counts(up: UpstreamProcess) -> None:
    r = oai(up).chat.completions.create(
        model="gpt-x", messages=[{"role": "system", "content": "be brief"}, user("hello world")])
    assert r.object == "chat.completion" and r.model == "gpt-x"
    assert r.choices[0].message.content == "[up] echo: hello world"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (4, 4, 8)
    log = up.requests()[-1]
    assert log["auth_ok"] and log["headers"]["authorization"] == "<redacted>"
    assert log["body"]["messages"][1]["content"] == "hello world"


def test_chat_max_tokens_and_stop(up: UpstreamProcess) -> None:
    c = oai(up).chat.completions
    r = c.create(model="m", messages=[user("a b c d e")], max_completion_tokens=3)
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("[up] echo: a", "length")
    r = c.create(model="m", messages=[user("a b c d e")], stop=[" c"])
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == ("[up] echo: a b", "stop")


def test_chat_stream_with_usage(up: UpstreamProcess) -> None:
    chunks = list(oai(up).chat.completions.create(
        model="m", messages=[user("one two three")], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[up] echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


def test_chat_tool_call_round_trip(up: UpstreamProcess) -> None:
    c = oai(up).chat.completions
    messages: list[Any] = [user("weather in Paris")]
    r = c.create(model="m", messages=messages, tools=[WEATHER])
    call = r.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert r.choices[0].finish_reason == "tool_calls" and r.choices[0].message.content is None
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert orjson.loads(call.function.arguments) == {"echo": "weather in Paris"}  # type: ignore[union-attr]
    messages += [r.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny 21C"}]
    r2 = c.create(model="m", messages=messages, tools=[WEATHER])
    assert r2.choices[0].message.content == "[up] tool result: sunny 21C"
    assert r2.choices[0].finish_reason == "stop"
    forced = c.create(model="m", messages=[user("x")], tools=[WEATHER],
                      tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert forced.choices[0].finish_reason == "stop"  # what OpenAI does for a named choice
    assert c.create(model="m", messages=[user("x")], tools=[WEATHER],
                    tool_choice="none").choices[0].message.content == "[up] echo: x"


def test_chat_tool_call_streamed(up: UpstreamProcess) -> None:
    chunks = list(oai(up).chat.completions.create(
        model="m", messages=[user("weather in Paris")], tools=[WEATHER], stream=True))
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id and calls[0].function and calls[0].function.name == "get_weather"
    assert all(tc.id is None and tc.index == 0 for tc in calls[1:])
    args = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert len(calls) > 2 and orjson.loads(args) == {"echo": "weather in Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_message_must_answer_a_tool_call(up: UpstreamProcess) -> None:
    with pytest.raises(openai.BadRequestError, match="role 'tool'"):
        oai(up).chat.completions.create(
            model="m", messages=[user("x"), {"role": "tool", "tool_call_id": "c1",
                                             "content": "r"}])


def test_completions_and_embeddings(up: UpstreamProcess) -> None:
    client = oai(up)
    r = client.completions.create(model="m", prompt="say this", max_tokens=3)
    assert (r.choices[0].text, r.choices[0].finish_reason) == ("[up] echo: say", "length")
    words = " ".join(["w"] * 30)
    assert client.completions.create(model="m", prompt=words).usage.completion_tokens == 16  # type: ignore[union-attr]
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="m", prompt="hi there", stream=True) if c.choices)
    assert text == "[up] echo: hi there"
    e = client.embeddings.create(model="emb", input=["hello", "world"])  # SDK asks base64
    assert [len(d.embedding) for d in e.data] == [1536, 1536]
    assert abs(sum(x * x for x in e.data[0].embedding) - 1) < 1e-3
    again = client.embeddings.create(model="emb", input="hello", dimensions=8,
                                     encoding_format="float")
    assert len(again.data[0].embedding) == 8 and e.usage.prompt_tokens == 2
    assert {m.id for m in client.models.list()} == {"up-echo"}


def test_azure_deployment(up: UpstreamProcess) -> None:
    az = openai.AzureOpenAI(azure_endpoint=up.url, azure_deployment="dep1", api_key=KEY,
                            api_version="2024-10-21", max_retries=0)
    r = az.chat.completions.create(model="dep1", messages=[user("hi")])
    assert r.choices[0].message.content == "[up] echo: hi" and r.model == "dep1"
    chunks = list(az.chat.completions.create(model="dep1", messages=[user("hi")], stream=True))
    assert chunks[0].choices == []  # Azure's prompt-filter chunk comes first
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "[up] echo: hi"
    assert up.requests()[-1]["headers"]["api-key"] == "<redacted>"
    bad = openai.AzureOpenAI(azure_endpoint=up.url, azure_deployment="dep1", api_key="nope",
                             api_version="2024-10-21", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="dep1", messages=[user("hi")])


def test_auth_model_and_json_errors(up: UpstreamProcess) -> None:
    with pytest.raises(openai.AuthenticationError) as exc:
        openai.OpenAI(base_url=up.url + "/v1", api_key="wrong", max_retries=0
                      ).chat.completions.create(model="m", messages=[user("x")])
    assert exc.value.code == "invalid_api_key"
    assert up.requests()[-1]["auth_ok"] is False
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=up.url, api_key="wrong", max_retries=0).messages.create(
            model="c", max_tokens=5, messages=[user("x")])
    r = httpx.post(up.url + "/v1/chat/completions", content=b"{nope",
                   headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(up.url + "/v1/messages", headers=ANTHROPIC_HEADERS,
                   json={"model": "c", "messages": [user("x")]})
    assert r.status_code == 400
    assert r.json()["error"] == {"type": "invalid_request_error",
                                 "message": "max_tokens: Field required"}
    assert gemini(up, "generateContent", {"contents": []}, key=None).status_code == 403
    bad_key = gemini(up, "generateContent", {"contents": [{"parts": [{"text": "x"}]}]},
                     key="wrong")
    assert bad_key.status_code == 400
    assert bad_key.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    up.configure(models=["gpt-x"])
    with pytest.raises(openai.NotFoundError) as nf:
        oai(up).chat.completions.create(model="other", messages=[user("x")])
    assert nf.value.code == "model_not_found"
    assert gemini(up, "generateContent", {"contents": [{"parts": [{"text": "x"}]}]},
                  model="other").json()["error"]["status"] == "NOT_FOUND"


def test_cached_and_reasoning_tokens(up: UpstreamProcess) -> None:
    up.configure(cached_tokens=2, reasoning_tokens=5)
    u = oai(up).chat.completions.create(model="m", messages=[user("a b c")]).usage
    assert u is not None and u.prompt_tokens_details and u.completion_tokens_details
    assert (u.prompt_tokens_details.cached_tokens, u.completion_tokens_details.reasoning_tokens,
            u.completion_tokens) == (2, 5, 5 + 5)
    m = claude(up).messages.create(model="c", max_tokens=50, messages=[user("a b c")])
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens, m.usage.output_tokens) == \
        (1, 2, 5 + 5)
    meta = gemini(up, "generateContent", {"contents": [{"parts": [{"text": "a b c"}]}]}
                  ).json()["usageMetadata"]
    assert (meta["cachedContentTokenCount"], meta["thoughtsTokenCount"],
            meta["candidatesTokenCount"], meta["totalTokenCount"]) == (2, 5, 5, 3 + 5 + 5)


# ---- Anthropic --------------------------------------------------------------------------------

def test_messages_create_with_system_and_stops(up: UpstreamProcess) -> None:
    c = claude(up).messages
    m = c.create(model="claude-x", max_tokens=100, system="you are terse",
                 messages=[user("hello there")])
    assert m.type == "message" and m.role == "assistant" and m.model == "claude-x"
    assert m.content[0].type == "text" and m.content[0].text == "[up] echo: hello there"
    assert (m.stop_reason, m.stop_sequence) == ("end_turn", None)
    assert (m.usage.input_tokens, m.usage.output_tokens) == (5, 4)
    s = c.create(model="c", max_tokens=100, messages=[user("one two three")],
                 stop_sequences=["two"])
    assert s.content[0].type == "text" and s.content[0].text == "[up] echo: one "
    assert (s.stop_reason, s.stop_sequence) == ("stop_sequence", "two")
    assert c.create(model="c", max_tokens=2, messages=[user("a b")]).stop_reason == "max_tokens"
    system_blocks: Any = [{"type": "text", "text": "block system"}]
    assert c.create(model="c", max_tokens=9, system=system_blocks,
                    messages=[user("x")]).usage.input_tokens == 3


def test_messages_stream_accumulates(up: UpstreamProcess) -> None:
    with claude(up).messages.stream(model="c", max_tokens=100,
                                    messages=[user("stream me please")]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "[up] echo: stream me please"
    assert final.content[0].type == "text" and final.content[0].text == text
    assert (final.stop_reason, final.usage.input_tokens, final.usage.output_tokens) == \
        ("end_turn", 3, 5)


def test_messages_tool_use_round_trip(up: UpstreamProcess) -> None:
    c = claude(up).messages
    messages: list[Any] = [user("weather in Oslo")]
    m = c.create(model="c", max_tokens=100, tools=[CLAUDE_WEATHER], messages=messages)
    block = m.content[0]
    assert m.stop_reason == "tool_use" and block.type == "tool_use"
    assert block.name == "get_weather" and block.input == {"echo": "weather in Oslo"}
    assert block.id.startswith("toolu_")
    with c.stream(model="c", max_tokens=100, tools=[CLAUDE_WEATHER], messages=messages,
                  tool_choice={"type": "tool", "name": "get_weather"}) as stream:
        streamed = stream.get_final_message()
    assert streamed.stop_reason == "tool_use" and streamed.content[0].type == "tool_use"
    assert streamed.content[0].input == {"echo": "weather in Oslo"}
    messages += [{"role": "assistant", "content": [block.model_dump()]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id,
                                               "content": "snow -3C"}]}]
    done = c.create(model="c", max_tokens=100, tools=[CLAUDE_WEATHER], messages=messages)
    assert done.stop_reason == "end_turn" and done.content[0].type == "text"
    assert done.content[0].text == "[up] tool result: snow -3C"
    with pytest.raises(anthropic.BadRequestError, match="tool_use"):
        c.create(model="c", max_tokens=100, messages=[*messages[:2], user("no result")])


# ---- Gemini -----------------------------------------------------------------------------------

GEMINI_BODY: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": "sys"}]},
    "contents": [{"role": "user", "parts": [{"text": "hi gemini"}]}],
    "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2},
}


def test_gemini_generate_content(up: UpstreamProcess) -> None:
    r = gemini(up, "generateContent", GEMINI_BODY)
    assert r.status_code == 200
    body = r.json()
    cand = body["candidates"][0]
    assert cand["content"] == {"role": "model", "parts": [{"text": "[up] echo: hi gemini"}]}
    assert cand["finishReason"] == "STOP" and body["modelVersion"] == "gemini-x"
    assert {k: body["usageMetadata"][k] for k in
            ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")} == \
        {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}
    short = {**GEMINI_BODY, "generationConfig": {"maxOutputTokens": 2}}
    assert gemini(up, "generateContent", short).json()["candidates"][0]["finishReason"] == \
        "MAX_TOKENS"
    keyed = httpx.post(f"{up.url}/v1beta/models/g:generateContent?key={KEY}", json=GEMINI_BODY)
    assert keyed.status_code == 200 and up.requests()[-1]["query"]["key"] == "<redacted>"


def test_gemini_stream_sse_and_json_array(up: UpstreamProcess) -> None:
    r = gemini(up, "streamGenerateContent", GEMINI_BODY, query="?alt=sse")
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [orjson.loads(e.removeprefix(b"data: ")) for e in r.content.split(b"\r\n\r\n")
              if e]
    text = "".join(p["text"] for e in events for p in e["candidates"][0]["content"]["parts"])
    assert text == "[up] echo: hi gemini" and len(events) == 4
    assert [e["candidates"][0].get("finishReason") for e in events] == [None] * 3 + ["STOP"]
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 4
    array = gemini(up, "streamGenerateContent", GEMINI_BODY).json()
    assert isinstance(array, list) and len(array) == 4


def test_gemini_function_call_round_trip(up: UpstreamProcess) -> None:
    tools = [{"functionDeclarations": [{"name": "lookup", "description": "d",
                                        "parameters": {"type": "object"}}]}]
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "find cats"}]}],
                            "tools": tools,
                            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}
    cand = gemini(up, "generateContent", body).json()["candidates"][0]
    call = cand["content"]["parts"][0]["functionCall"]
    assert call == {"name": "lookup", "args": {"echo": "find cats"}}
    assert cand["finishReason"] == "STOP"
    r = gemini(up, "streamGenerateContent", body, query="?alt=sse")
    assert b'"functionCall"' in r.content
    body["contents"] += [{"role": "model", "parts": [{"functionCall": call}]},
                         {"role": "user", "parts": [{"functionResponse": {
                             "name": "lookup", "response": {"result": "3 cats"}}}]}]
    reply = gemini(up, "generateContent", body).json()["candidates"][0]["content"]["parts"][0]
    assert reply["text"] == '[up] tool result: {"result":"3 cats"}'
    orphan = {"contents": [body["contents"][0], body["contents"][2]]}
    assert gemini(up, "generateContent", orphan).status_code == 400


# ---- faults -----------------------------------------------------------------------------------

def test_fault_status_429_with_retry_after(up: UpstreamProcess) -> None:
    up.add_faults({"kind": "status", "status": 429, "retry_after": 1})
    with pytest.raises(openai.RateLimitError) as exc:
        oai(up).chat.completions.create(model="m", messages=[user("x")])
    assert exc.value.response.headers["retry-after"] == "1"
    assert exc.value.code == "rate_limit_exceeded"
    assert oai(up).chat.completions.create(model="m", messages=[user("x")]).choices
    assert up.stats()["faults"] == {"status": 1}


def test_fault_status_bodies_follow_the_route(up: UpstreamProcess) -> None:
    up.add_faults({"kind": "status", "status": 529, "path": "/v1/messages"},
                  {"kind": "status", "status": 503, "protocol": "gemini", "count": 2})
    assert oai(up).chat.completions.create(model="m", messages=[user("x")]).choices
    with pytest.raises(anthropic.OverloadedError) as exc:
        claude(up).messages.create(model="c", max_tokens=5, messages=[user("x")])
    assert exc.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    for _ in range(2):
        r = gemini(up, "generateContent", GEMINI_BODY)
        assert (r.status_code, r.json()["error"]["status"]) == (503, "UNAVAILABLE")
    assert gemini(up, "generateContent", GEMINI_BODY).status_code == 200
    assert [e["fault"] for e in up.requests()] == [None, "status", "status", "status", None]


def test_fault_slow_first_token_and_slow_drip(up: UpstreamProcess) -> None:
    up.add_faults({"kind": "slow_first_token", "delay_ms": 400})
    start = time.monotonic()
    stream = oai(up).chat.completions.create(model="m", messages=[user("a")], stream=True)
    next(iter(stream))
    assert time.monotonic() - start >= 0.4
    list(stream)
    up.add_faults({"kind": "slow_drip", "delay_ms": 60})
    start = time.monotonic()
    chunks = list(oai(up).chat.completions.create(model="m", messages=[user("a")], stream=True))
    assert time.monotonic() - start >= 0.06 * len(chunks)


def test_fault_reset_mid_stream(up: UpstreamProcess) -> None:
    up.add_faults({"kind": "reset_mid_stream", "after_chunks": 2},
                  {"kind": "reset_mid_stream", "after_chunks": 2, "mode": "close"})
    for error in (httpx2.ReadError, httpx2.RemoteProtocolError):
        got = []
        with pytest.raises((error, openai.APIConnectionError)):
            for chunk in oai(up).chat.completions.create(
                    model="m", messages=[user("a b c d")], stream=True):
                got.append(chunk)
        assert len(got) == 2
    up.add_faults({"kind": "reset_mid_stream"})
    with pytest.raises(openai.APIConnectionError):
        oai(up).chat.completions.create(model="m", messages=[user("x")])


def test_fault_malformed_json(up: UpstreamProcess) -> None:
    up.add_faults({"kind": "malformed_json"}, {"kind": "malformed_json"})
    with pytest.raises((openai.APIResponseValidationError, ValueError)):
        oai(up).chat.completions.create(model="m", messages=[user("x")])
    with pytest.raises(ValueError):
        for _ in oai(up).chat.completions.create(model="m", messages=[user("x y")],
                                                 stream=True):
            pass


def test_fault_hang_times_out(up: UpstreamProcess) -> None:
    up.add_faults({"kind": "hang"})
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        oai(up, timeout=0.5).chat.completions.create(model="m", messages=[user("x")])
    assert time.monotonic() - start < 5
    up.add_faults({"kind": "hang", "after_chunks": 1})
    with pytest.raises(httpx.ReadTimeout), httpx.stream(
            "POST", up.url + "/v1/messages", headers=ANTHROPIC_HEADERS, timeout=0.5,
            json={"model": "c", "max_tokens": 9, "stream": True,
                  "messages": [user("x")]}) as r:
        assert r.status_code == 200
        for _ in r.iter_bytes():
            pass


def test_fault_stream_error_events(up: UpstreamProcess) -> None:
    up.add_faults({"kind": "stream_error", "protocol": "anthropic"},
                  {"kind": "stream_error", "protocol": "openai", "after_chunks": 1})
    with pytest.raises(anthropic.APIStatusError) as exc, claude(up).messages.stream(
            model="c", max_tokens=9, messages=[user("x")]) as stream:
        for _ in stream:
            pass
    assert exc.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(openai.APIError, match="overloaded"):
        for _ in oai(up).chat.completions.create(model="m", messages=[user("x")], stream=True):
            pass


def test_fault_control_validation(up: UpstreamProcess) -> None:
    r = httpx.post(up.url + "/_control/faults", json={"kind": "explode"})
    assert r.status_code == 400 and "kind must be one of" in r.json()["error"]
    pending = up.add_faults({"kind": "status", "status": 500, "count": -1})
    assert pending == [{"kind": "status", "count": -1, "status": 500, "delay_ms": 0.0,
                        "mode": "rst"}]
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            oai(up).chat.completions.create(model="m", messages=[user("x")])
    up.clear_faults()
    assert oai(up).chat.completions.create(model="m", messages=[user("x")]).choices
