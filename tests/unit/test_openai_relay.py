"""Relaying an OpenAI-compatible upstream's stream chunks to an OpenAI client
(``providers.openai_compat.ChunkRelay``): the upstream's bytes, the gateway's envelope."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferplane.errors import UpstreamError
from inferplane.protocol.types import GenerationRequest, SamplingParams, Usage
from inferplane.providers.openai_compat import ChunkRelay

REQUEST = GenerationRequest(id="chatcmpl-ours", endpoint="chat.completions", model="alias",
                            params=SamplingParams(), stream=True, created=1700000000)
THEIRS = {"id": "chatcmpl-up1", "object": "chat.completion.chunk", "created": 5,
          "model": "gpt-up-2025", "service_tier": "default", "system_fingerprint": "fp_1"}


def chunk(choice: dict[str, Any] | None, **more: Any) -> bytes:
    return orjson.dumps({**THEIRS, "choices": [] if choice is None else [choice], **more})


def delta(**fields: Any) -> dict[str, Any]:
    return {"index": 0, "delta": fields, "logprobs": None, "finish_reason": None}


def frames(data: bytes) -> list[dict[str, Any]]:
    """The client's frames, parsed."""
    assert data.endswith(b"\n\n")
    events = data[:-2].split(b"\n\n")
    assert all(e.startswith(b"data: ") for e in events)
    return [orjson.loads(e[len(b"data: "):]) for e in events]


def test_only_the_envelope_changes_and_the_rest_is_the_upstreams_bytes() -> None:
    relay = ChunkRelay("up", REQUEST)
    raw = [chunk(delta(role="assistant", content="")),
           chunk(delta(content="Hel"), obfuscation="xyz"),
           chunk(delta(content="lo \"quoted\" {\"id\":\"chatcmpl-up1\"}"))]
    out = relay.relay([("message", r) for r in raw])
    for got, sent in zip(out.data[:-2].split(b"\n\n"), raw, strict=True):
        tail = sent[sent.index(b',"service_tier"'):]
        assert got == (b'data: {"id":"chatcmpl-ours","object":"chat.completion.chunk",'
                       b'"created":1700000000,"model":"alias"' + tail)
    assert [f["choices"][0]["delta"].get("content") for f in frames(out.data)] == [
        "", "Hel", 'lo "quoted" {"id":"chatcmpl-up1"}']
    assert frames(out.data)[1]["obfuscation"] == "xyz"


def test_a_chunk_written_differently_is_encoded_again_with_the_envelope_replaced() -> None:
    relay = ChunkRelay("up", REQUEST)
    first = chunk(delta(role="assistant", content=""))
    spaced = orjson.dumps({"model": "other", **THEIRS, "choices": [delta(content="x")]}
                          ).replace(b'":', b'": ')
    out = frames(relay.relay([("message", first), ("message", spaced)]).data)
    for frame in out:
        assert (frame["id"], frame["created"], frame["model"]) == (
            "chatcmpl-ours", 1700000000, "alias")
        assert frame["system_fingerprint"] == "fp_1"
    assert out[1]["choices"][0]["delta"] == {"content": "x"}


def test_a_first_chunk_without_an_envelope_still_relays_every_chunk() -> None:
    relay = ChunkRelay("up", REQUEST)
    bare = [orjson.dumps({"choices": [delta(content=t)]}) for t in ("a", "b")]
    out = frames(relay.relay([("message", b) for b in bare]).data)
    assert [(f["id"], f["model"], f["choices"][0]["delta"]["content"]) for f in out] == [
        ("chatcmpl-ours", "alias", "a"), ("chatcmpl-ours", "alias", "b")]


def test_text_and_tool_call_pieces_are_metered() -> None:
    relay = ChunkRelay("up", REQUEST)
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "f", "arguments": ""}}
    out = relay.relay([
        ("message", chunk(delta(role="assistant", content=None))),
        ("message", chunk(delta(content="abc"))),
        ("message", chunk(delta(tool_calls=[call]))),
        ("message", chunk(delta(tool_calls=[{"index": 0, "function": {"arguments": "{\"a\""}}]))),
    ])
    assert (out.deltas, out.chars) == (3, 3 + 0 + 4)


def test_usage_and_finish_reason_are_kept_and_the_usage_chunk_is_not_relayed() -> None:
    relay = ChunkRelay("up", REQUEST)
    finish = {**delta(), "finish_reason": "length"}
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
             "prompt_tokens_details": {"cached_tokens": 2}}
    out = relay.relay([("message", chunk(delta(content="a"), usage=None)),
                       ("message", chunk(finish, usage=None)),
                       ("message", chunk(None, usage=usage)),
                       ("message", b"[DONE]"),
                       ("message", chunk(delta(content="after the end")))])
    assert len(frames(out.data)) == 2 and relay.done
    finished = relay.finished()
    assert finished.finish_reason == "length"
    assert finished.usage == Usage(prompt_tokens=7, completion_tokens=3, cached_tokens=2)


def test_legacy_completions_chunks_are_relayed() -> None:
    req = GenerationRequest(id="cmpl-ours", endpoint="completions", model="alias",
                            params=SamplingParams(), stream=True, created=9)
    relay = ChunkRelay("up", req)
    raw = orjson.dumps({"id": "cmpl-up", "object": "text_completion", "created": 1,
                        "model": "m", "choices": [{"index": 0, "text": "hi", "logprobs": None,
                                                   "finish_reason": None}]})
    out = relay.relay([("message", raw)])
    assert (out.deltas, out.chars) == (1, 2)
    assert frames(out.data)[0]["id"] == "cmpl-ours"


def test_an_azure_prelude_without_choices_is_not_relayed() -> None:
    relay = ChunkRelay("up", REQUEST)
    prelude = orjson.dumps({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                            "prompt_filter_results": []})
    out = relay.relay([("message", prelude), ("message", chunk(delta(content="a")))])
    assert [f["choices"][0]["delta"]["content"] for f in frames(out.data)] == ["a"]
    assert out.data.startswith(b'data: {"id":"chatcmpl-ours","object":"chat.completion.chunk"')


@pytest.mark.parametrize(("data", "message"), [
    (b'{"error": {"message": "overloaded", "type": "server_error"}}', "overloaded"),
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
])
def test_an_error_or_malformed_chunk_raises(data: bytes, message: str) -> None:
    relay = ChunkRelay("up", REQUEST)
    with pytest.raises(UpstreamError, match=message) as info:
        relay.relay([("message", data), ("message", chunk(delta(content="a")))])
    assert info.value.retryable


def test_an_error_after_content_in_the_same_read_comes_after_that_content() -> None:
    relay = ChunkRelay("up", REQUEST)
    error = b'{"error": {"message": "overloaded", "type": "server_error"}}'
    out = relay.relay([("message", chunk(delta(content="a"))), ("message", error),
                       ("message", chunk(delta(content="b")))])
    assert [f["choices"][0]["delta"]["content"] for f in frames(out.data)] == ["a"]
    assert relay.failed is not None and "overloaded" in relay.failed.message


def test_nothing_after_done_is_relayed_in_a_later_batch_either() -> None:
    relay = ChunkRelay("up", REQUEST)
    assert relay.relay([("message", b"[DONE]")]).data == b"" and relay.done
    assert relay.relay([("message", chunk(delta(content="late")))]).data == b""
