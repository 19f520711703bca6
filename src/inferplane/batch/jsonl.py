"""A batch input file, checked line by line before it is stored: pure.

Each non-empty line is ``{"custom_id", "method": "POST", "url", "body"}``: a ``custom_id``
unique in the file, a ``url`` some endpoint handles, and a ``body`` naming a model the
uploading key may use. The first problem is reported with its line number.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import orjson

from inferplane.errors import InvalidRequest

PARAM = "file"


@dataclass(frozen=True, slots=True)
class InputLine:
    """One request of a batch input file."""

    custom_id: str
    url: str
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body["model"])


def _refuse(number: int, message: str) -> InvalidRequest:
    return InvalidRequest(f"Line {number} of the file: {message}", param=PARAM,
                          code="invalid_batch_file")


def parse_line(number: int, raw: bytes, urls: Collection[str]) -> InputLine:
    """One line's request, or the reason it is not one.

    >>> parse_line(1, b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings",'
    ...            b' "body": {"model": "m", "input": "hi"}}', ["/v1/embeddings"]).model
    'm'
    >>> parse_line(2, b'{"custom_id": "a", "method": "GET", "url": "/v1/embeddings",'
    ...            b' "body": {}}', ["/v1/embeddings"])
    Traceback (most recent call last):
    ...
    inferplane.errors.InvalidRequest: Line 2 of the file: the method must be "POST", not 'GET'.
    """
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _refuse(number, f"not valid JSON ({exc}).") from None
    if not isinstance(line, dict):
        raise _refuse(number, "each line must be a JSON object.")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _refuse(number, "custom_id must be a non-empty string.")
    if line.get("method") != "POST":
        raise _refuse(number, f'the method must be "POST", not {line.get("method")!r}.')
    url = line.get("url")
    if url not in urls:
        raise _refuse(number, f"the url {url!r} is not one batches may call; use one of: "
                      f"{', '.join(sorted(urls))}.")
    body = line.get("body")
    if not isinstance(body, dict):
        raise _refuse(number, "body must be a JSON object (the request's body).")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _refuse(number, "body.model must name a model.")
    if body.get("stream"):
        raise _refuse(number, "a batch request cannot stream; remove body.stream.")
    return InputLine(custom_id, str(url), body)


def parse_input(content: bytes, urls: Collection[str], may_use: Callable[[str], str | None],
                max_lines: int) -> list[InputLine]:
    """Every request of an input file. ``may_use(model)``: None when the uploading key may
    use ``model``, else why not.

    >>> ok = lambda model: None
    >>> lines = b'{"custom_id":"a","method":"POST","url":"/u","body":{"model":"m"}}\\n' * 2
    >>> parse_input(lines, ["/u"], ok, 10)
    Traceback (most recent call last):
    ...
    inferplane.errors.InvalidRequest: Line 2 of the file: the custom_id 'a' is already on line 1.
    """
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    seen: dict[str, int] = {}
    found: list[InputLine] = []
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        if len(found) == max_lines:
            raise InvalidRequest(f"The file has more than {max_lines} requests, the most one "
                                 "batch may hold; split it.", param=PARAM,
                                 code="invalid_batch_file")
        line = parse_line(number, raw, urls)
        if line.custom_id in seen:
            raise _refuse(number, f"the custom_id {line.custom_id!r} is already on line "
                          f"{seen[line.custom_id]}.")
        if (why := may_use(line.model)) is not None:
            raise _refuse(number, why)
        seen[line.custom_id] = number
        found.append(line)
    if not found:
        raise InvalidRequest("The file holds no requests.", param=PARAM, code="invalid_batch_file")
    return found
