"""No request field is dropped without a word: what the OpenAI parser makes of each field,
how log probabilities and continuous usage render (parsed back by the official ``openai``
SDK's types), and what an OpenAI-compatible upstream is sent."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from inferplane.api.openai_parse import parse
from inferplane.api.openai_render import ChunkWriter, completion
from inferplane.errors import InvalidRequest
from inferplane.protocol.types import (
    Finished,
    GenerationRequest,
    TextDelta,
    TokenLogprob,
    Usage,
)
from inferplane.providers.openai_compat import request_body, response_events

USER = [{"role": "user", "content": "Hi"}]
TOKENS = (TokenLogprob("Hel", -0.25, (72, 101, 108), (TokenLogprob("Hel", -0.25, (72, 101, 108)),
                                                      TokenLogprob("Hi", -2.0, (72, 105)))),
          TokenLogprob("lo", -0.5, (108, 111), (TokenLogprob("lo", -0.5, (108, 111)),
                                                TokenLogprob("p", -1.5, (112,)))))
FINISHED = Finished("length", Usage(3, 2))


def chat(**fields: Any) -> GenerationRequest:
    return parse("chat.completions", {"model": "m", "messages": USER, **fields}, "chatcmpl-1", 1)


def text(**fields: Any) -> GenerationRequest:
    return parse("completions", {"model": "m", "prompt": "Once", **fields}, "cmpl-1", 1)


def test_logprobs_are_parsed_per_endpoint() -> None:
    assert chat().logprobs is None and chat(logprobs=False).logprobs is None
    assert chat(logprobs=True).logprobs == 0
    assert chat(logprobs=True, top_logprobs=5).logprobs == 5
    assert text(logprobs=3).logprobs == 3 and text().logprobs is None
    assert chat(logprobs=True).needs() == {"logprobs"}


@pytest.mark.parametrize(("make", "fields", "param"), [
    (chat, {"top_logprobs": 2}, "top_logprobs"),  # needs logprobs: true
    (chat, {"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    (chat, {"logprobs": 2}, "logprobs"),  # chat takes a boolean
    (text, {"logprobs": True}, "logprobs"),  # completions an integer
    (text, {"logprobs": 6}, "logprobs"),
    (chat, {"ignore_eos": "yes"}, "ignore_eos"),
    (chat, {"stream": True, "stream_options": {"every_chunk": True}}, "stream_options.every_chunk"),
])
def test_bad_fields_are_400_naming_them(make: Any, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        make(**fields)
    assert refused.value.param == param


def test_ignore_eos_and_continuous_usage_are_what_the_request_needs() -> None:
    req = chat(ignore_eos=True, stream=True,
               stream_options={"include_usage": True, "continuous_usage_stats": True})
    assert req.params.ignore_eos and req.continuous_usage and req.include_usage
    assert req.needs() == {"ignore_eos", "stream_options.continuous_usage_stats"}


def test_other_fields_are_extensions_unless_at_their_defaults() -> None:
    req = chat(top_k=40, frequency_penalty=0.5, presence_penalty=0, logit_bias={},
               response_format={"type": "text"}, metadata=None, repetition_penalty=1.1)
    assert req.extensions == {"top_k": 40, "frequency_penalty": 0.5, "repetition_penalty": 1.1}
    assert req.needs() == {"top_k", "frequency_penalty", "repetition_penalty"}
    assert chat(frequency_penalty=0, echo=False).extensions == {}


def test_chat_logprobs_render_as_openai_sends_them() -> None:
    body = completion(chat(logprobs=True, top_logprobs=2), "Hello", FINISHED, tokens=TOKENS)
    parsed = ChatCompletion.model_validate(body)
    content = parsed.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None
    assert [(t.token, t.logprob, t.bytes) for t in content] == [
        ("Hel", -0.25, [72, 101, 108]), ("lo", -0.5, [108, 111])]
    assert [a.token for a in content[1].top_logprobs] == ["lo", "p"]
    assert body["choices"][0]["logprobs"]["refusal"] is None


def test_completion_logprobs_render_as_parallel_lists_with_offsets() -> None:
    body = completion(text(logprobs=2), "Hello", FINISHED, tokens=TOKENS)
    lp = Completion.model_validate(body).choices[0].logprobs
    assert lp is not None
    assert lp.tokens == ["Hel", "lo"] and lp.token_logprobs == [-0.25, -0.5]
    assert lp.top_logprobs == [{"Hel": -0.25, "Hi": -2.0}, {"lo": -0.5, "p": -1.5}]
    assert lp.text_offset == [0, 3]


def test_no_logprobs_asked_renders_null() -> None:
    assert completion(chat(), "Hi", FINISHED, tokens=TOKENS)["choices"][0]["logprobs"] is None


def chunk(raw: bytes) -> Any:
    return orjson.loads(raw[len(b"data: "):-2])


def test_stream_chunks_carry_their_tokens_logprobs_and_the_usage_so_far() -> None:
    req = replace(chat(logprobs=True, top_logprobs=2, stream=True,
                       stream_options={"include_usage": True, "continuous_usage_stats": True}))
    writer = ChunkWriter(req, prompt_tokens=3)
    first = ChatCompletionChunk.model_validate(chunk(writer.first()))
    assert first.usage is not None and first.usage.completion_tokens == 0
    parts = [ChatCompletionChunk.model_validate(chunk(writer.text(TextDelta(t.token, 1, (t,)))))
             for t in TOKENS]
    assert [p.usage.completion_tokens for p in parts if p.usage] == [1, 2]
    assert all(p.usage and p.usage.prompt_tokens == 3 for p in parts)
    assert [p.choices[0].logprobs.content[0].token  # type: ignore[union-attr, index]
            for p in parts] == ["Hel", "lo"]


def test_an_openai_compatible_upstream_gets_the_fields_and_the_extensions() -> None:
    req = chat(logprobs=True, top_logprobs=2, ignore_eos=True, top_k=40, stream=True,
               stream_options={"include_usage": True, "continuous_usage_stats": True})
    body = request_body(req, "up")
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert body["ignore_eos"] is True and body["top_k"] == 40
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert request_body(text(logprobs=3), "up")["logprobs"] == 3
    plain = request_body(chat(), "up")
    assert not {"logprobs", "top_logprobs", "ignore_eos"} & set(plain)


def test_an_extension_cannot_override_what_the_gateway_sets() -> None:
    req = replace(chat(), extensions={"model": "other", "stream": True, "top_k": 1})
    body = request_body(req, "up")
    assert body["model"] == "up" and body["stream"] is False and body["top_k"] == 1


def test_an_upstreams_logprobs_come_back_canonical() -> None:
    upstream = {"choices": [{"message": {"content": "Hello"}, "finish_reason": "stop",
                             "logprobs": {"content": [
                                 {"token": "Hel", "logprob": -0.25, "bytes": [72, 101, 108],
                                  "top_logprobs": [{"token": "Hi", "logprob": -2.0,
                                                    "bytes": [72, 105]}]}]}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    delta = response_events(upstream, "up")[0]
    assert isinstance(delta, TextDelta)
    assert delta.logprobs[0].token == "Hel" and delta.logprobs[0].top[0].logprob == -2.0
