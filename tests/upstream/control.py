"""The control API under ``/_control/``: faults, the request log, counters, settings, health.

=========  ======================  ===================================================
method     path                    does
=========  ======================  ===================================================
GET        /_control/health        ``{"status": "ok", "name", "pid"}``
GET        /_control/faults        pending faults
POST       /_control/faults        queue a fault object or a list of them (see ``faults``)
DELETE     /_control/faults        drop pending faults
GET        /_control/requests      the newest 100k requests (secrets redacted, auth_ok)
DELETE     /_control/requests      clear it
GET        /_control/stats         counters by protocol, status and fault kind; connections
DELETE     /_control/stats         reset them
GET        /_control/settings      the settings
PATCH      /_control/settings      change think_ms, token_delay_ms, cached_tokens,
                                   reasoning_tokens, models, log_requests
=========  ======================  ===================================================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import orjson

from .connection import Protocol
from .faults import parse_fault
from .settings import Settings
from .state import State

Reply = tuple[int, Any]


def health(state: State, body: Any) -> Reply:
    return 200, {"status": "ok", "name": state.settings.name, "pid": os.getpid()}


def list_faults(state: State, body: Any) -> Reply:
    return 200, {"faults": state.faults.pending()}


def add_faults(state: State, body: Any) -> Reply:
    raw = body if isinstance(body, list) else [body]
    try:
        faults = [parse_fault(f) for f in raw]
    except (TypeError, ValueError) as exc:
        return 400, {"error": str(exc)}
    state.faults.push(faults)
    return 200, {"queued": len(faults), "pending": state.faults.pending()}


def clear_faults(state: State, body: Any) -> Reply:
    return 200, {"cleared": state.faults.clear()}


def list_requests(state: State, body: Any) -> Reply:
    return 200, {"requests": list(state.requests)}


def clear_requests(state: State, body: Any) -> Reply:
    n = len(state.requests)
    state.requests.clear()
    return 200, {"cleared": n}


def stats(state: State, body: Any) -> Reply:
    return 200, state.stats()


def clear_stats(state: State, body: Any) -> Reply:
    state.counts.clear()
    state.connections_before = Protocol.opened
    return 200, state.stats()


def get_settings(state: State, body: Any) -> Reply:
    return 200, _public(state.settings)


def change_settings(state: State, body: Any) -> Reply:
    try:
        state.settings = state.settings.updated(body if isinstance(body, dict) else {})
    except (TypeError, ValueError) as exc:
        return 400, {"error": str(exc)}
    return 200, _public(state.settings)


def _public(settings: Settings) -> dict[str, Any]:
    data = dataclasses.asdict(settings)
    data["api_key"] = None if settings.api_key is None else "<redacted>"
    return data


#: (method, path) -> handler(state, parsed JSON body) -> (status, JSON reply)
ROUTES: dict[tuple[str, str], Callable[[State, Any], Reply]] = {
    ("GET", "/_control/health"): health,
    ("GET", "/_control/faults"): list_faults,
    ("POST", "/_control/faults"): add_faults,
    ("DELETE", "/_control/faults"): clear_faults,
    ("GET", "/_control/requests"): list_requests,
    ("DELETE", "/_control/requests"): clear_requests,
    ("GET", "/_control/stats"): stats,
    ("DELETE", "/_control/stats"): clear_stats,
    ("GET", "/_control/settings"): get_settings,
    ("PATCH", "/_control/settings"): change_settings,
    ("POST", "/_control/settings"): change_settings,
}


def handle(state: State, method: str, path: str, raw: bytes) -> Reply:
    """Run the control route for ``method path`` on ``state``."""
    route = ROUTES.get((method, path))
    if route is None:
        return 404, {"error": f"no control route {method} {path}"}
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        return 400, {"error": f"invalid JSON: {exc}"}
    return route(state, body)
