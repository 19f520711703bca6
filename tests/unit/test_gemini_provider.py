"""The Gemini adapter's translation: canonical requests -> Gemini bodies, Gemini responses and
stream chunks -> canonical events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest

from inferplane.config import DeploymentConfig
from inferplane.errors import InvalidRequest, UpstreamError
from inferplane.protocol.types import (
    EmbeddingRequest,
    Finished,
    GenerationRequest,
    Message,
    SamplingParams,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from inferplane.providers import gemini
from inferplane.providers.gemini import GeminiProvider, ResponseReader, remember
from inferplane.providers.gemini_request import (
    SKIP_SIGNATURE,
    clean_schema,
    embed_body,
    request_body,
)
from inferplane.providers.upstream import HttpUpstream
from tests.provider_helpers import chat, collect, collect_until_error

WEATHER = Tool("weather", "Weather in a city", {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
})
CALL = ToolCall("call_1", "weather", '{"city": "Oslo"}')


def read(*responses: Any, key: str = "req-1") -> tuple[list[Any], Finished]:
    reader = ResponseReader("gem", key)
    events = [e for r in responses for e in reader.feed(r)]
    return events, reader.finished()


def response(*parts: dict[str, Any], finish: str | None = "STOP",
             usage: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], **top}
    if usage is not None:
        out["usageMetadata"] = usage
    return out


# ---- requests ---------------------------------------------------------------------------------

def test_system_and_developer_messages_become_the_system_instruction() -> None:
    body = request_body(chat(Message("system", "Be brief."), Message("user", "Hi"),
                             Message("developer", "Use metric units.")))
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."},
                                                   {"text": "Use metric units."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_no_system_instruction_without_system_messages() -> None:
    assert "systemInstruction" not in request_body(chat(Message("user", "Hi")))


def test_multi_turn_roles() -> None:
    body = request_body(chat(Message("user", "Hi"), Message("assistant", "Hello"),
                             Message("user", "How are you?")))
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello"}]},
        {"role": "user", "parts": [{"text": "How are you?"}]},
    ]


def test_turns_without_parts_are_dropped() -> None:
    body = request_body(chat(Message("user", "Hi"), Message("assistant", ""),
                             Message("user", "Again")))
    assert [c["role"] for c in body["contents"]] == ["user", "user"]


def test_generation_config() -> None:
    params = SamplingParams(max_tokens=64, temperature=0.2, top_p=0.9, stop=("END",), seed=7)
    body = request_body(chat(Message("user", "Hi"), params=params))
    assert body["generationConfig"] == {"candidateCount": 1, "temperature": 0.2, "topP": 0.9,
                                        "maxOutputTokens": 64, "stopSequences": ["END"],
                                        "seed": 7}


def test_generation_config_leaves_out_what_is_unset() -> None:
    config = request_body(chat(Message("user", "Hi")))["generationConfig"]
    assert config == {"candidateCount": 1, "temperature": 1.0, "topP": 1.0}


def test_a_plain_prompt_is_one_user_turn() -> None:
    request = GenerationRequest(id="r", endpoint="completions", model="m",
                                params=SamplingParams(), prompt="Once upon")
    assert request_body(request)["contents"] == [{"role": "user", "parts": [{"text": "Once upon"}]}]


def test_tool_definitions_with_cleaned_schemas() -> None:
    body = request_body(chat(Message("user", "Weather?"), tools=(WEATHER,)))
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    }]}]
    assert "toolConfig" not in body


def test_a_tool_without_parameters_has_no_parameters() -> None:
    tools = (Tool("now"), Tool("ping", "", {"type": "object", "properties": {}}))
    declarations = request_body(chat(Message("user", "?"), tools=tools))["tools"][0]
    assert declarations["functionDeclarations"] == [{"name": "now"}, {"name": "ping"}]


def test_clean_schema_recurses_into_properties_items_and_any_of() -> None:
    schema = {
        "type": "object", "additionalProperties": False, "$defs": {"x": {}},
        "properties": {
            "tags": {"type": "array", "items": {"type": "string", "format": "email",
                                                 "additionalProperties": True}},
            "when": {"type": "string", "format": "date-time"},
            "size": {"anyOf": [{"type": "integer", "format": "int64", "$comment": "n"},
                               {"type": "null"}]},
            "mode": {"const": "fast", "examples": ["fast"]},
            "note": {"type": ["string", "null"], "description": "free text"},
            "opts": {"type": "object", "properties": {}, "additionalProperties": True},
        },
        "required": ["tags", "missing"],
    }
    assert clean_schema(schema) == {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}},
            "when": {"type": "string", "format": "date-time"},
            "size": {"anyOf": [{"type": "integer", "format": "int64"}, {"type": "null"}]},
            "mode": {"enum": ["fast"]},
            "note": {"type": "string", "nullable": True, "description": "free text"},
            "opts": {"type": "object"},
        },
        "required": ["tags"],
    }


def test_clean_schema_keeps_a_property_named_like_a_dropped_keyword() -> None:
    schema = {"type": "object", "properties": {"$schema": {"type": "string"},
                                               "additionalProperties": {"type": "boolean"}}}
    assert clean_schema(schema)["properties"] == {"$schema": {"type": "string"},
                                                  "additionalProperties": {"type": "boolean"}}


@pytest.mark.parametrize(("choice", "config"), [
    (ToolChoice("auto"), {"mode": "AUTO"}),
    (ToolChoice("none"), {"mode": "NONE"}),
    (ToolChoice("required"), {"mode": "ANY"}),
    (ToolChoice("function", "weather"), {"mode": "ANY", "allowedFunctionNames": ["weather"]}),
])
def test_tool_choice_modes(choice: ToolChoice, config: dict[str, Any]) -> None:
    body = request_body(chat(Message("user", "?"), tools=(WEATHER,), tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_tool_choice_without_tools_is_not_sent() -> None:
    body = request_body(chat(Message("user", "?"), tool_choice=ToolChoice("none")))
    assert "toolConfig" not in body and "tools" not in body


def test_tool_call_and_result_round_trip() -> None:
    other = ToolCall("call_2", "time", "")
    body = request_body(chat(
        Message("user", "Weather and time in Oslo?"),
        Message("assistant", "Let me check.", tool_calls=(CALL, other)),
        Message("tool", '{"temp": 21}', tool_call_id="call_1"),
        Message("tool", "12:00", tool_call_id="call_2"),
        Message("user", "Thanks"),
    ), {"call_2": "c2lnMg=="})
    assert body["contents"][1:] == [
        {"role": "model", "parts": [
            {"text": "Let me check."},
            {"functionCall": {"name": "weather", "args": {"city": "Oslo"}},
             "thoughtSignature": SKIP_SIGNATURE},
            {"functionCall": {"name": "time", "args": {}}, "thoughtSignature": "c2lnMg=="},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "time", "response": {"output": "12:00"}}},
        ]},
        {"role": "user", "parts": [{"text": "Thanks"}]},
    ]


def test_known_signatures_are_sent_back_and_unknown_later_calls_carry_none() -> None:
    second = ToolCall("call_2", "weather", '{"city": "Rome"}')
    parts = request_body(chat(Message("user", "?"),
                              Message("assistant", "", tool_calls=(CALL, second))),
                         {"call_1": "c2lnMQ=="})["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in parts] == ["c2lnMQ==", None]


def test_a_tool_message_may_name_its_function() -> None:
    body = request_body(chat(Message("user", "?"),
                             Message("tool", "ok", tool_call_id="unknown", name="weather")))
    assert body["contents"][1]["parts"][0]["functionResponse"]["name"] == "weather"


def test_a_tool_message_without_a_function_name_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="answers no earlier tool call"):
        request_body(chat(Message("user", "?"), Message("tool", "ok", tool_call_id="nope")))


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    bad = ToolCall("c", "weather", arguments)
    with pytest.raises(InvalidRequest, match="not a JSON object"):
        request_body(chat(Message("user", "?"), Message("assistant", "", tool_calls=(bad,))))


def test_embed_body() -> None:
    request = EmbeddingRequest("e", "m", ("a", "b"), dimensions=256)
    assert embed_body(request, "models/text-embedding-004") == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]},
         "outputDimensionality": 256},
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]},
         "outputDimensionality": 256},
    ]}


def test_remember_keeps_the_newest() -> None:
    known = {"a": "1", "b": "2"}
    remember(known, {"c": "3", "a": "4"}, limit=2)
    assert known == {"c": "3", "a": "4"}


# ---- responses --------------------------------------------------------------------------------

def test_text_and_usage() -> None:
    events, finished = read(response(
        {"text": "Hello"}, {"text": " there"},
        usage={"promptTokenCount": 10, "candidatesTokenCount": 3, "totalTokenCount": 13}))
    assert events == [TextDelta("Hello"), TextDelta(" there")]
    assert finished == Finished("stop", Usage(prompt_tokens=10, completion_tokens=3))


def test_thoughts_are_hidden_and_counted_as_reasoning_tokens() -> None:
    events, finished = read(response(
        {"text": "Let me think about the sea...", "thought": True}, {"text": "Blue."},
        usage={"promptTokenCount": 10, "candidatesTokenCount": 2, "thoughtsTokenCount": 30,
               "cachedContentTokenCount": 4, "totalTokenCount": 42}))
    assert events == [TextDelta("Blue.")]
    assert finished.usage == Usage(prompt_tokens=10, completion_tokens=32, cached_tokens=4,
                                   reasoning_tokens=30)


def test_function_calls() -> None:
    events, finished = read(response(
        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}},
         "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "now"}},
        responseId="resp-9"))
    first, second = events
    assert isinstance(first, ToolCallDelta) and isinstance(second, ToolCallDelta)
    assert (first.index, first.name, orjson.loads(first.arguments)) == (0, "weather",
                                                                        {"city": "Oslo"})
    assert (second.index, second.name, second.arguments) == (1, "now", "{}")
    assert first.id == gemini.call_id("resp-9", 0) and second.id == gemini.call_id("resp-9", 1)
    assert first.id is not None and len(first.id) <= 40
    assert finished.finish_reason == "tool_calls"


def test_a_function_call_id_from_gemini_is_kept_with_its_signature() -> None:
    reader = ResponseReader("gem", "req")
    [event] = reader.feed(response(
        {"functionCall": {"id": "fc-1", "name": "now", "args": {}}, "thoughtSignature": "c2ln"}))
    assert isinstance(event, ToolCallDelta) and event.id == "fc-1"
    assert reader.signatures == {"fc-1": "c2ln"}


def test_call_ids_are_stable_and_signatures_collected() -> None:
    chunk = response({"functionCall": {"name": "now", "args": {}}, "thoughtSignature": "c2ln"},
                     responseId="r1")
    first, second = ResponseReader("gem", "x"), ResponseReader("gem", "y")
    assert first.feed(chunk) == second.feed(chunk)
    assert first.signatures == {gemini.call_id("r1", 0): "c2ln"}


def test_call_ids_fall_back_to_the_request_id() -> None:
    [event] = ResponseReader("gem", "req-7").feed(response({"functionCall": {"name": "now"}}))
    assert isinstance(event, ToolCallDelta) and event.id == gemini.call_id("req-7", 0)


@pytest.mark.parametrize(("reason", "expected"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("OTHER", "stop"), ("MALFORMED_FUNCTION_CALL", "stop"), ("LANGUAGE", "stop"),
    ("FINISH_REASON_UNSPECIFIED", "stop"), ("SOMETHING_NEW", "stop"),
])
def test_finish_reasons(reason: str, expected: str) -> None:
    assert read(response({"text": "x"}, finish=reason))[1].finish_reason == expected


def test_a_safety_stop_after_a_call_stays_content_filter() -> None:
    _, finished = read(response({"functionCall": {"name": "now"}}, finish="SAFETY"))
    assert finished.finish_reason == "content_filter"


def test_stream_chunks_keep_the_last_usage_and_the_finish_reason() -> None:
    reader = ResponseReader("gem", "req")
    first = reader.feed(response({"text": "Hel"}, finish=None,
                                 usage={"promptTokenCount": 5, "candidatesTokenCount": 1}))
    assert first == [TextDelta("Hel")] and reader.finish is None
    second = reader.feed(response({"text": "lo"}, finish="MAX_TOKENS",
                                  usage={"promptTokenCount": 5, "candidatesTokenCount": 2}))
    assert second == [TextDelta("lo")]
    assert reader.finished() == Finished("length", Usage(prompt_tokens=5, completion_tokens=2))


def test_a_chunk_without_candidates_may_carry_only_usage() -> None:
    reader = ResponseReader("gem", "req")
    assert reader.feed({"usageMetadata": {"promptTokenCount": 3}}) == []
    assert reader.usage == Usage(prompt_tokens=3)


def test_empty_text_parts_are_skipped() -> None:
    events, _ = read(response({"text": ""}, {"text": "", "thoughtSignature": "c2ln"}))
    assert events == []


def test_a_blocked_prompt_is_a_non_retryable_400() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 8}}
    with pytest.raises(UpstreamError) as info:
        ResponseReader("gem", "req").feed(body)
    err = info.value
    assert err.upstream_status == 400 and err.status == 400 and not err.retryable
    assert "blocked the prompt (SAFETY)" in err.message


def test_an_error_chunk_maps_its_status() -> None:
    with pytest.raises(UpstreamError) as info:
        ResponseReader("gem", "req").feed(
            {"error": {"code": 503, "message": "Overloaded.", "status": "UNAVAILABLE"}})
    assert info.value.retryable and info.value.upstream_status == 503
    with pytest.raises(UpstreamError) as info:
        ResponseReader("gem", "req").feed(
            {"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}})
    assert not info.value.retryable


def test_a_response_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(UpstreamError) as info:
        ResponseReader("gem", "req").feed([1, 2])
    assert info.value.code == "upstream_malformed"


# ---- the provider's own parts -----------------------------------------------------------------

def provider(**fields: Any) -> GeminiProvider:
    return GeminiProvider(DeploymentConfig(name="gem", model="chat", provider="gemini", **fields))


def test_urls_and_auth_header() -> None:
    p = provider(upstream_model="gemini-2.5-flash")
    assert p.url("generateContent") == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent")
    assert p.auth_headers("k") == {"x-goog-api-key": "k"}
    tuned = provider(base_url="http://127.0.0.1:9/v1beta/", upstream_model="tunedModels/mine")
    assert tuned.url("generateContent") == "http://127.0.0.1:9/v1beta/tunedModels/mine:generateContent"


def test_it_serves_chat_and_embeddings_only() -> None:
    p = provider()
    assert p.serves("chat.completions", frozenset({"tools"}))
    assert p.serves("embeddings")
    assert not p.serves("completions")


class ChunkedHttp:
    """Stands in for the transport: answers every request with ``chunks`` as SSE data."""

    def __init__(self, *chunks: dict[str, Any]) -> None:
        self.chunks = [orjson.dumps(c) for c in chunks]
        self.urls: list[str] = []

    def deadline(self) -> None:
        return None

    async def post(self, url: str, body: Any, deadline: Any) -> None:
        self.urls.append(url)

    async def events(self, response: Any, deadline: Any
                     ) -> AsyncIterator[list[tuple[str, bytes]]]:
        for chunk in self.chunks:  # one read each
            yield [("message", chunk)]


def streaming(*chunks: dict[str, Any]) -> tuple[GeminiProvider, ChunkedHttp]:
    p = provider(upstream_model="g")
    http = ChunkedHttp(*chunks)
    p.http = cast(HttpUpstream, http)
    return p, http


async def test_a_stream_that_ends_without_a_finish_reason_broke() -> None:
    p, http = streaming(response({"text": "Hel"}, finish=None))
    events, err = await collect_until_error(p, chat(Message("user", "Hi"), stream=True))
    assert err.retryable and err.code == "upstream_disconnected"
    assert events[1:] == [TextDelta("Hel")]
    assert http.urls == [
        "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse"]


async def test_a_streamed_call_signature_is_sent_back_next_turn() -> None:
    p, _ = streaming(response({"functionCall": {"name": "now"}, "thoughtSignature": "c2ln"},
                              responseId="r1"))
    events = await collect(p, chat(Message("user", "?"), stream=True))
    call = events[1]
    assert isinstance(call, ToolCallDelta) and call.id is not None
    assert events[-1] == Finished("tool_calls", Usage())
    history = chat(Message("user", "?"),
                   Message("assistant", "", tool_calls=(ToolCall(call.id, "now", "{}"),)))
    parts = request_body(history, p.signatures)["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "c2ln"


async def test_a_blocked_streamed_prompt_fails_before_started() -> None:
    p, _ = streaming({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})
    events, err = await collect_until_error(p, chat(Message("user", "?"), stream=True))
    assert not err.retryable and events == []


class JsonHttp(ChunkedHttp):
    """Answers every request with one JSON body."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self.body = body

    async def read_json(self, response: Any, deadline: Any) -> Any:
        return self.body


async def test_embed_reads_the_vectors_in_order() -> None:
    p = provider(upstream_model="text-embedding-004")
    p.http = cast(HttpUpstream, JsonHttp({"embeddings": [{"values": [0.1]}, {"values": [0.2]}]}))
    result = await p.embed(EmbeddingRequest("e", "m", ("a", "b")))
    assert result.vectors == [[0.1], [0.2]] and result.prompt_tokens == 0


async def test_embed_without_every_vector_is_malformed() -> None:
    p = provider()
    p.http = cast(HttpUpstream, JsonHttp({"embeddings": [{"values": [0.1]}]}))
    with pytest.raises(UpstreamError) as info:
        await p.embed(EmbeddingRequest("e", "m", ("a", "b")))
    assert info.value.code == "upstream_malformed"
