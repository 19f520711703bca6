"""OpenAI Embeddings: deterministic unit vectors derived from each input's text.

The official SDK asks for ``encoding_format: "base64"`` by default (little-endian float32), so
both encodings are served. ``dimensions`` shortens the vector, as text-embedding-3 models allow.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from functools import lru_cache
from typing import Any

from .echo import count_words
from .openai_wire import model_not_found
from .settings import Settings
from .wire import (
    Output,
    Request,
    WireError,
    check_model,
    int_or_none,
    json_body,
    prompt_texts,
    require,
)


@lru_cache(maxsize=4096)
def vector(text: str, dim: int) -> tuple[float, ...]:
    """A unit vector of ``dim`` floats that depends only on ``text``.

    >>> round(sum(x * x for x in vector("hi", 8)), 6)
    1.0
    """
    raw = array("H", hashlib.shake_256(text.encode()).digest(2 * dim))
    values = [v / 32768.0 - 1.0 for v in raw]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return tuple(v / norm for v in values)


def encode(values: tuple[float, ...], fmt: str) -> list[float] | str:
    if fmt == "float":
        return list(values)
    packed = array("f", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def inputs(body: Any) -> list[str]:
    """The inputs as strings: a string, strings, token ids, or token-id arrays."""
    texts = prompt_texts(require(body, "input", "Missing required parameter: 'input'."))
    if texts is None or not all(texts):
        raise WireError(400, "'$.input' is invalid. Please check the API reference: "
                        "https://platform.openai.com/docs/api-reference.", param="input")
    return texts


def embeddings(req: Request, settings: Settings) -> Output:
    """``POST /v1/embeddings``."""
    body = req.body
    model = check_model(require(body, "model", "you must provide a model parameter"),
                        settings, model_not_found)
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise WireError(400, f"Invalid value: '{fmt}'. Supported values are: 'float' and "
                        "'base64'.", param="encoding_format", code="invalid_value")
    dim = int_or_none(body.get("dimensions"), "dimensions") or settings.embedding_dim
    texts = inputs(body)
    tokens = count_words(texts)
    return json_body({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(vector(t, dim), fmt)}
                 for i, t in enumerate(texts)],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
