"""Azure OpenAI: the OpenAI formats under ``/openai/deployments/{dep}/...?api-version=``.

Differences kept from the real service: the ``api-key`` header, a required ``api-version``
query parameter, the deployment in the path instead of the model, ``{"error": {"code",
"message"}}`` bodies from its gateway, content-filter annotations on choices, and a first
streamed chunk with ``choices: []`` that carries only ``prompt_filter_results``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import completions, embeddings, openai_wire
from .settings import Settings
from .wire import Body, Output, Request, WireError, json_body, sse

SAFE = {"filtered": False, "severity": "safe"}
FILTERS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": FILTERS}]
EXTRAS: dict[str, Any] = {
    "choice": {"content_filter_results": FILTERS},
    "response": {"prompt_filter_results": PROMPT_FILTERS},
    "prelude": (sse({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                     "prompt_filter_results": PROMPT_FILTERS}),),
}
GATEWAY_MESSAGES = {
    401: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
         "provide a valid key for an active subscription and use a correct regional API "
         "endpoint for your resource.",
    404: "Resource not found",
    429: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
         "have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry "
         "after 1 second.",
}


class AzureDialect:
    """``api-key`` (or Entra Bearer) auth and Azure's error bodies."""

    name = "azure"
    request_id_header = b"apim-request-id"
    overloaded = 503
    bad_json = "The request body could not be parsed as JSON."
    headers = ((b"x-ratelimit-remaining-requests", b"9999"),
               (b"x-ratelimit-remaining-tokens", b"999999"))

    def auth_error(self, req: Request, settings: Settings) -> WireError | None:
        if "api-version" not in req.query:
            return WireError(404, GATEWAY_MESSAGES[404])
        if settings.api_key is None:
            return None
        key = req.headers.get("api-key") or req.headers.get("authorization", "")[7:]
        return None if key == settings.api_key else WireError(401, GATEWAY_MESSAGES[401])

    def error(self, err: WireError) -> Body:
        if err.status == 400:
            return json_body(openai_wire.error_object(400, err.message, err.param, err.code), 400)
        message = err.message or GATEWAY_MESSAGES.get(err.status, "Internal server error")
        return json_body({"error": {"code": err.code or str(err.status), "message": message}},
                         err.status)

    def stream_error(self, status: int) -> bytes:
        return sse(openai_wire.error_object(status))


def _deployment(req: Request, settings: Settings) -> tuple[Any, Settings]:
    """The body with the deployment as its model, and settings that accept that model."""
    dep = req.params["deployment"]
    if settings.models and dep not in settings.models:
        raise WireError(404, "The API deployment for this resource does not exist. If you "
                        "created the deployment within the last 5 minutes, please wait a "
                        "moment and try again.", code="DeploymentNotFound")
    body = req.body if isinstance(req.body, dict) else {}
    return {**body, "model": dep}, dataclasses.replace(settings, models=())


def chat_completions(req: Request, settings: Settings) -> Output:
    body, settings = _deployment(req, settings)
    call = openai_wire.parse_chat(body, settings)
    call.extras = EXTRAS
    return openai_wire.chat(call, settings)


def completions_(req: Request, settings: Settings) -> Output:
    body, settings = _deployment(req, settings)
    return completions.create(dataclasses.replace(req, body=body), settings)


def embeddings_(req: Request, settings: Settings) -> Output:
    body, settings = _deployment(req, settings)
    return embeddings.embeddings(dataclasses.replace(req, body=body), settings)


#: operation path after ``/openai/deployments/{dep}/`` -> handler
OPERATIONS = {
    "chat/completions": chat_completions,
    "completions": completions_,
    "embeddings": embeddings_,
}
