"""Gemini API wire format: ``/v1beta/models/{model}:{method}`` and the model list.

Kept as the real API does it: the key in ``x-goog-api-key`` or ``?key=`` (a missing key is a 403
``PERMISSION_DENIED``, a wrong one a 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``);
``streamGenerateContent?alt=sse`` events end with ``\\r\\n\\r\\n``; without ``alt=sse`` the
stream is one JSON array written piece by piece; every chunk carries running
``usageMetadata``; the last has ``finishReason``; function calls end with ``STOP``;
``thoughtsTokenCount`` is outside ``candidatesTokenCount`` but inside ``totalTokenCount``;
function responses must come right after the function-call turn, one per call.
Only lowerCamelCase field names are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .echo import Prompt, Reply, answer, count_words
from .settings import Settings
from .wire import (
    JSON,
    Body,
    Output,
    Request,
    Stream,
    WireError,
    check_model,
    int_or_none,
    json_body,
    new_id,
    sse,
    stops,
)

CRLF2 = b"\r\n\r\n"
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "stop_sequence": "STOP", "tool": "STOP"}
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
          500: "INTERNAL", 501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
         "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
KEY_INVALID = "API key not valid. Please pass a valid API key."
KEY_DETAILS = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"}}]


def error_object(status: int, message: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": status, "message": message or MESSAGES.get(status, "Error"),
                           "status": STATUS.get(status, "UNKNOWN")}
    if message == KEY_INVALID:
        err["details"] = KEY_DETAILS
    return {"error": err}


class GeminiDialect:
    """API-key auth (header or query) and ``google.rpc.Status``-shaped error bodies."""

    name = "gemini"
    request_id_header = b"x-goog-request-id"
    overloaded = 503
    bad_json = "Invalid JSON payload received. Unexpected token."
    headers = ((b"server", b"scaffolding on HTTPServer2"),)

    def auth_error(self, req: Request, settings: Settings) -> WireError | None:
        if settings.api_key is None:
            return None
        key = req.headers.get("x-goog-api-key") or req.query.get("key")
        if not key:
            return WireError(403, "Method doesn't allow unregistered callers (callers without "
                             "established identity). Please use API key or other form of API "
                             "consumer identity to call this API.")
        return None if key == settings.api_key else WireError(400, KEY_INVALID)

    def error(self, err: WireError) -> Body:
        return json_body(error_object(err.status, err.message), err.status)

    def stream_error(self, status: int) -> bytes:
        return sse(error_object(status), end=CRLF2)


@dataclass(slots=True)
class GenerateCall:
    prompt: Prompt
    model: str
    candidates: int
    json: bool = False  # JSON mode: the echo as a JSON object ``{"echo": <last user text>}``

    def reply(self, settings: Settings) -> Reply:
        said = orjson.dumps({"echo": " ".join(self.prompt.last_user.split())}).decode()
        return answer(self.prompt, settings.name, said if self.json else settings.reply)


def not_found(model: str) -> WireError:
    return WireError(404, f"models/{model} is not found for API version v1beta, or is not "
                     "supported for generateContent. Call ListModels to see the list of "
                     "available models and their supported methods.")


def part_text(part: Any) -> str:
    if not isinstance(part, dict):
        return ""
    if isinstance(part.get("text"), str):
        return str(part["text"])
    for key, inner in (("functionCall", "args"), ("functionResponse", "response")):
        if key in part:
            return orjson.dumps(part[key].get(inner, {})).decode()
    return ""


def parts_text(content: Any, kinds: tuple[str, ...] | None = None) -> str:
    parts = content.get("parts", []) if isinstance(content, dict) else []
    return " ".join(t for p in parts if isinstance(p, dict)
                    and (kinds is None or any(k in p for k in kinds)) and (t := part_text(p)))


def _count(content: dict[str, Any], key: str) -> int:
    return sum(1 for p in content.get("parts", []) if isinstance(p, dict) and key in p)


def _check_turns(contents: list[Any]) -> None:
    """Roles are user/model; function responses answer the function-call turn just before."""
    calls = 0
    for c in contents:
        if not isinstance(c, dict) or c.get("role", "user") not in ("user", "model", "function"):
            raise WireError(400, "Please use a valid role: user, model.")
        answered = _count(c, "functionResponse")
        if answered and answered != calls:
            raise WireError(400, "Please ensure that function response turn comes immediately "
                            "after a function call turn." if not calls else
                            "Please ensure that the number of function response parts is "
                            "equal to the number of function call parts of the function call "
                            "turn.")
        calls = _count(c, "functionCall")


def _chosen_tool(tools: list[Any], config: Any) -> str | None:
    names = [str(d.get("name")) for t in tools if isinstance(t, dict)
             for d in t.get("functionDeclarations", [])]
    fcc = (config or {}).get("functionCallingConfig") or {}
    mode = str(fcc.get("mode", "AUTO")).upper()
    if not names or mode == "NONE":
        return None
    allowed = fcc.get("allowedFunctionNames") or []
    return str(allowed[0]) if mode == "ANY" and allowed else names[0]


def parse(body: Any, model: str, settings: Settings) -> GenerateCall:
    model = check_model(model, settings, not_found)
    contents = body.get("contents") if isinstance(body, dict) else None
    if not isinstance(contents, list) or not contents:
        raise WireError(400, "* GenerateContentRequest.contents: contents is not specified\n")
    _check_turns(contents)
    config = body.get("generationConfig") or {}
    tools = body.get("tools") or []
    n_tools = sum(len(t.get("functionDeclarations", [])) for t in tools if isinstance(t, dict))
    texts = [parts_text(body.get("systemInstruction")), *(parts_text(c) for c in contents)]
    last_user = next((t for c in reversed(contents) if c.get("role", "user") == "user"
                      and (t := parts_text(c, ("text",)))), "")
    last = contents[-1]
    prompt = Prompt(
        prompt_tokens=count_words(texts) + n_tools,
        last_user=last_user,
        tool_result=parts_text(last, ("functionResponse",))
        if _count(last, "functionResponse") else None,
        tool=_chosen_tool(tools, body.get("toolConfig")),
        max_tokens=int_or_none(config.get("maxOutputTokens"), "maxOutputTokens"),
        stop=stops(config.get("stopSequences")),
    )
    mime = config.get("responseMimeType", "text/plain")
    if ("responseSchema" in config or "responseJsonSchema" in config) and mime not in (
            "application/json", "text/x.enum"):
        raise WireError(400, "* GenerateContentRequest.generation_config.response_mime_type: "
                        "response_mime_type must be one of [application/json, text/x.enum] "
                        "when response_schema is set.\n")
    if "responseSchema" in config and "responseJsonSchema" in config:
        raise WireError(400, "response_schema and response_json_schema cannot both be set.")
    return GenerateCall(prompt, model, int_or_none(config.get("candidateCount"),
                                                   "candidateCount") or 1,
                        json=mime == "application/json")


def usage(reply: Reply, settings: Settings, done: int, n: int = 1) -> dict[str, Any]:
    """``usageMetadata`` after ``done`` completion tokens per candidate."""
    p = reply.prompt_tokens
    out: dict[str, Any] = {"promptTokenCount": p, "candidatesTokenCount": done * n,
                           "totalTokenCount": p + done * n + settings.reasoning_tokens,
                           "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p}]}
    if settings.cached_tokens:
        out["cachedContentTokenCount"] = min(settings.cached_tokens, p)
    if settings.reasoning_tokens:
        out["thoughtsTokenCount"] = settings.reasoning_tokens
    return out


def parts(reply: Reply) -> list[dict[str, Any]]:
    tc = reply.tool_call
    if tc is None:
        return [{"text": reply.text}]
    return [{"functionCall": {"name": tc.name, "args": orjson.loads(tc.arguments)}}]


def _response(call: GenerateCall, candidate_parts: list[dict[str, Any]], finish: str | None,
              usage_metadata: dict[str, Any], response_id: str) -> dict[str, Any]:
    candidates = []
    for i in range(call.candidates):
        cand: dict[str, Any] = {"content": {"parts": candidate_parts, "role": "model"}}
        if finish:
            cand["finishReason"] = finish
        cand["index"] = i
        candidates.append(cand)
    return {"candidates": candidates, "usageMetadata": usage_metadata,
            "modelVersion": call.model, "responseId": response_id}


def generate(call: GenerateCall, reply: Reply, settings: Settings) -> Body:
    body = _response(call, parts(reply), FINISH[reply.finish],
                     usage(reply, settings, reply.completion_tokens, call.candidates),
                     new_id(""))
    return json_body(body, tokens=reply.completion_tokens)


def chunks(call: GenerateCall, reply: Reply, settings: Settings) -> list[dict[str, Any]]:
    """The ``GenerateContentResponse`` pieces of a streamed reply."""
    rid = new_id("")
    if reply.tool_call is not None or not reply.pieces:
        return [_response(call, parts(reply), FINISH[reply.finish],
                          usage(reply, settings, reply.completion_tokens, call.candidates), rid)]
    last = len(reply.pieces) - 1
    return [_response(call, [{"text": p}], FINISH[reply.finish] if i == last else None,
                      usage(reply, settings, reply.completion_tokens if i == last else i + 1,
                            call.candidates), rid)
            for i, p in enumerate(reply.pieces)]


def stream(call: GenerateCall, reply: Reply, settings: Settings, as_sse: bool) -> Stream:
    pieces = chunks(call, reply, settings)
    if as_sse:
        return Stream([sse(c, end=CRLF2) for c in pieces])
    body = [b"[" + orjson.dumps(pieces[0])]
    body += [b",\r\n" + orjson.dumps(c) for c in pieces[1:]]
    body[-1] += b"]"
    return Stream(body, content_type=JSON)


def generate_content(req: Request, settings: Settings) -> Output:
    call = parse(req.body, req.params["model"], settings)
    return generate(call, call.reply(settings), settings)


def stream_generate_content(req: Request, settings: Settings) -> Output:
    call = parse(req.body, req.params["model"], settings)
    return stream(call, call.reply(settings), settings,
                  req.query.get("alt") == "sse")


def count_tokens(req: Request, settings: Settings) -> Output:
    body = req.body if isinstance(req.body, dict) else {}
    call = parse(body.get("generateContentRequest", body), req.params["model"], settings)
    p = call.prompt.prompt_tokens
    return json_body({"totalTokens": p,
                      "promptTokensDetails": [{"modality": "TEXT", "tokenCount": p}]})


#: ``{model}:{method}`` method -> handler
METHODS: dict[str, Callable[[Request, Settings], Output]] = {
    "generateContent": generate_content,
    "streamGenerateContent": stream_generate_content,
    "countTokens": count_tokens,
}


def models(req: Request, settings: Settings) -> Output:
    """``GET /v1beta/models``."""
    return json_body({"models": [
        {"name": f"models/{m}", "version": "001", "displayName": m,
         "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
         "supportedGenerationMethods": list(METHODS)} for m in settings.listed_models]})
