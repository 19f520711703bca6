"""The ``responses`` section: how long the OpenAI Responses API keeps what it stored
(docs/api.md#responses)."""

from __future__ import annotations

from pydantic import Field

from inferplane.config.problems import Section


class ResponsesConfig(Section):
    """Stored responses (``store: true``, the default): kept this long, then removed."""

    # a stored response (its input and output items) is removed this many days after it was made
    retention_days: float = Field(30.0, gt=0, le=3650)
    # how often expired responses are removed (they are never served once expired)
    sweep_interval_s: float = Field(3600.0, gt=0)
    # a conversation rebuilt from previous_response_id follows at most this many responses
    max_chain: int = Field(1000, ge=1, le=100_000)
