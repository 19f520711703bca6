"""Which handler and which provider dialect serve a method and path.

Fixed paths are one dict lookup; the two families with names in the path (Gemini's
``/v1beta/models/{model}:{method}`` and Azure's ``/openai/deployments/{dep}/{operation}``) are
matched by prefix. ``GET /v1/models`` answers in Anthropic's shape when ``anthropic-version``
is sent, as both providers serve that path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import (
    anthropic_wire,
    azure_wire,
    completions,
    embeddings,
    gemini_wire,
    openai_wire,
    responses_wire,
)
from .wire import Dialect, Handler

OPENAI: Dialect = openai_wire.OpenAIDialect()
AZURE: Dialect = azure_wire.AzureDialect()
ANTHROPIC: Dialect = anthropic_wire.AnthropicDialect()
GEMINI: Dialect = gemini_wire.GeminiDialect()


@dataclass(frozen=True, slots=True)
class Route:
    """A handler, the dialect its errors and auth follow, and whether faults apply to it."""

    dialect: Dialect
    handler: Handler
    inference: bool = True
    by_header: tuple[str, Route] | None = None

    def variant(self, headers: dict[str, str]) -> Route:
        if self.by_header is not None and self.by_header[0] in headers:
            return self.by_header[1]
        return self


EXACT: dict[tuple[str, str], Route] = {
    ("POST", "/v1/chat/completions"): Route(OPENAI, openai_wire.chat_completions),
    ("POST", "/v1/completions"): Route(OPENAI, completions.create),
    ("POST", "/v1/embeddings"): Route(OPENAI, embeddings.embeddings),
    ("POST", "/v1/responses"): Route(OPENAI, responses_wire.create),
    ("GET", "/v1/models"): Route(
        OPENAI, openai_wire.models, inference=False,
        by_header=("anthropic-version", Route(ANTHROPIC, anthropic_wire.models, False))),
    ("POST", "/v1/messages"): Route(ANTHROPIC, anthropic_wire.messages),
    ("POST", "/v1/messages/count_tokens"): Route(ANTHROPIC, anthropic_wire.count_tokens, False),
    ("GET", "/v1beta/models"): Route(GEMINI, gemini_wire.models, inference=False),
}

GEMINI_ROUTES = {name: Route(GEMINI, handler, inference=name != "countTokens")
                 for name, handler in gemini_wire.METHODS.items()}
AZURE_ROUTES = {op: Route(AZURE, handler) for op, handler in azure_wire.OPERATIONS.items()}

Match = tuple[Route, dict[str, str]] | None


def _gemini(method: str, rest: str) -> Match:
    model, _, name = rest.rpartition(":")
    route = GEMINI_ROUTES.get(name)
    return (route, {"model": model}) if route and model and method == "POST" else None


def _azure(method: str, rest: str) -> Match:
    deployment, _, operation = rest.partition("/")
    route = AZURE_ROUTES.get(operation)
    return (route, {"deployment": deployment}) if route and method == "POST" else None


PREFIXES: tuple[tuple[str, Callable[[str, str], Match]], ...] = (
    ("/v1beta/models/", _gemini),
    ("/v1/models/", _gemini),
    ("/openai/deployments/", _azure),
)


def resolve(method: str, path: str) -> Match:
    """The route for ``method path`` and the names taken from the path, or None."""
    route = EXACT.get((method, path))
    if route is not None:
        return route, {}
    for prefix, match in PREFIXES:
        if path.startswith(prefix):
            return match(method, path[len(prefix):])
    return None
