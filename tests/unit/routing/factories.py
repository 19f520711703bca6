"""Candidates and profiles for the routing tests, with every field but the one under test
at a neutral default."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from inferplane.routing.candidate import Candidate, RequestProfile

BASE = Candidate(name="x", alias="chat", provider="openai", region="us-east", jurisdiction="us")


def cand(name: str, **fields: Any) -> Candidate:
    return replace(BASE, name=name, **fields)


def profile(prompt_tokens: int = 1000, output_tokens: int = 200, **fields: Any) -> RequestProfile:
    return RequestProfile(prompt_tokens=prompt_tokens, output_tokens=output_tokens, **fields)
