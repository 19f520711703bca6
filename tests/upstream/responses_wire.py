"""OpenAI's Responses API: ``POST /v1/responses`` (plain and streamed), stateless.

Faithful details kept on purpose: ``input`` as a string or items (messages with text parts,
``function_call``, ``function_call_output``); function tools flat (``{"type": "function",
"name": ...}``); ``max_output_tokens`` below 16 refused, as OpenAI does; a
``function_call_output`` must answer a ``function_call`` earlier in the input; a
``previous_response_id`` is looked up and, as this server keeps nothing, not found (404);
the stream's typed events each carry a ``sequence_number``, a function call's arguments come in
fragments, and the usage comes only in ``response.completed`` (or ``response.incomplete``).
"""

from __future__ import annotations

from typing import Any

from .echo import Prompt, Reply, answer, count_words
from .settings import Settings
from .wire import (
    Output,
    Request,
    Stream,
    WireError,
    check_model,
    json_body,
    new_id,
    now,
    require,
    sse,
)

MIN_OUTPUT_TOKENS = 16


def _texts(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def parse(body: Any, settings: Settings) -> tuple[str, Prompt]:
    from .openai_wire import model_not_found

    model = check_model(require(body, "model", "Missing required parameter: 'model'."),
                        settings, model_not_found)
    if body.get("previous_response_id") is not None:
        raise WireError(404, f"Previous response with id '{body['previous_response_id']}' not "
                        "found.", param="previous_response_id", code="previous_response_not_found")
    raw = require(body, "input", "Missing required parameter: 'input'.")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise WireError(400, "Invalid type for 'input'.", param="input", code="invalid_type")
    texts = [body.get("instructions") or ""]
    last_user, calls, tool_result = "", set(), None
    for i, item in enumerate(items):
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "message":
            texts.append(_texts(item.get("content")))
            if item.get("role") == "user":
                last_user = texts[-1]
            tool_result = None
        elif kind == "function_call":
            texts.append(str(item.get("arguments", "")))
            calls.add(item.get("call_id"))
        elif kind == "function_call_output":
            if item.get("call_id") not in calls:
                raise WireError(400, f"No tool call found for function call output with "
                                f"call_id {item.get('call_id')}.", param=f"input[{i}]")
            tool_result = _texts(item.get("output"))
            texts.append(tool_result)
        else:
            raise WireError(400, f"Invalid value: '{kind}'.", param=f"input[{i}].type",
                            code="invalid_value")
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < MIN_OUTPUT_TOKENS):
        raise WireError(400, "Invalid 'max_output_tokens': integer below minimum value. "
                        f"Expected a value >= {MIN_OUTPUT_TOKENS}, but got {limit} instead.",
                        param="max_output_tokens", code="integer_below_min_value")
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    tool = None
    if tools and choice != "none":
        named = choice.get("name") if isinstance(choice, dict) else None
        tool = str(named or tools[0].get("name"))
    return model, Prompt(prompt_tokens=count_words(texts) + len(tools), last_user=last_user,
                         tool_result=tool_result, tool=tool, max_tokens=limit)


def _usage(reply: Reply, settings: Settings) -> dict[str, Any]:
    output = reply.completion_tokens + settings.reasoning_tokens
    return {"input_tokens": reply.prompt_tokens,
            "input_tokens_details": {"cached_tokens": min(settings.cached_tokens,
                                                          reply.prompt_tokens)},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": settings.reasoning_tokens},
            "total_tokens": reply.prompt_tokens + output}


def _item(reply: Reply, item_id: str, status: str, text: str | None = None) -> dict[str, Any]:
    if reply.tool_call is None:
        return {"id": item_id, "type": "message", "status": status, "role": "assistant",
                "content": [{"type": "output_text", "annotations": [], "logprobs": [],
                             "text": reply.text if text is None else text}]}
    return {"id": item_id, "type": "function_call", "status": status,
            "arguments": reply.tool_call.arguments if text is None else text,
            "call_id": f"call_{item_id[3:27]}", "name": reply.tool_call.name}


def _response(response_id: str, model: str, body: Any, status: str,
              output: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
    cut = status == "incomplete"
    return {"id": response_id, "object": "response", "created_at": now(), "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "model": model,
            "output": output, "parallel_tool_calls": True,
            "previous_response_id": None, "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0), "top_p": body.get("top_p", 1.0),
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "text": body.get("text") or {"format": {"type": "text"}}, "truncation": "disabled",
            "usage": usage, "user": None, "metadata": body.get("metadata") or {}}


def create(req: Request, settings: Settings) -> Output:
    """``POST /v1/responses``."""
    model, prompt = parse(req.body, settings)
    reply = answer(prompt, settings.name, settings.reply)
    status = "incomplete" if reply.finish == "length" else "completed"
    response_id = new_id("resp_")
    item_id = new_id("fc_" if reply.tool_call is not None else "msg_")
    if not req.body.get("stream"):
        return json_body(_response(response_id, model, req.body, status,
                                   [_item(reply, item_id, status)], _usage(reply, settings)),
                         tokens=reply.completion_tokens)
    return Stream(_events(req.body, model, reply, response_id, item_id, status, settings))


def _events(body: Any, model: str, reply: Reply, response_id: str, item_id: str, status: str,
            settings: Settings) -> list[bytes]:
    events: list[tuple[str, dict[str, Any]]] = []
    opening = _response(response_id, model, body, "in_progress", [], None)
    events += [("response.created", {"response": opening}),
               ("response.in_progress", {"response": opening})]
    at = {"item_id": item_id, "output_index": 0}
    events.append(("response.output_item.added",
                   {"output_index": 0, "item": _item(reply, item_id, "in_progress", "")}))
    if reply.tool_call is None:
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        events.append(("response.content_part.added", {**at, "content_index": 0, "part": part}))
        events += [("response.output_text.delta",
                    {**at, "content_index": 0, "delta": piece, "logprobs": []})
                   for piece in reply.pieces]
        events += [("response.output_text.done",
                    {**at, "content_index": 0, "text": reply.text, "logprobs": []}),
                   ("response.content_part.done",
                    {**at, "content_index": 0, "part": {**part, "text": reply.text}})]
    else:
        events += [("response.function_call_arguments.delta", {**at, "delta": fragment})
                   for fragment in reply.tool_call.fragments]
        events.append(("response.function_call_arguments.done",
                       {**at, "arguments": reply.tool_call.arguments}))
    done = _item(reply, item_id, status)
    events.append(("response.output_item.done", {"output_index": 0, "item": done}))
    final = _response(response_id, model, body, status, [done], _usage(reply, settings))
    events.append((f"response.{status}", {"response": final}))
    return [sse({"type": kind, "sequence_number": n, **fields}, kind)
            for n, (kind, fields) in enumerate(events)]
