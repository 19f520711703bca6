"""The lines of a batch's output and error files, in OpenAI's format: pure.

Each is ``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``:
an answered line has a ``response`` (a 200 goes to the output file, any other status to the
error file) and ``error`` null; a line that never ran (the window ended, the batch was
cancelled) has ``response`` null and ``error`` ``{"code", "message"}``.
"""

from __future__ import annotations

import hashlib
from typing import Any

EXPIRED = "batch_expired"
CANCELLED = "batch_cancelled"
UNRUN = {EXPIRED: "The batch's completion window ended before this request ran.",
         CANCELLED: "The batch was cancelled before this request ran."}


def request_id(batch_id: str, index: int) -> str:
    """A line's request id, the same every time the line runs: its ledger record's id.

    >>> request_id("batch_0123", 7)
    'batch_req_0123_7'
    """
    return f"batch_req_{batch_id.removeprefix('batch_')}_{index}"


def line_id(batch_id: str, index: int) -> str:
    """The output line's own ``id``.

    >>> line_id("batch_0123", 7)
    'batch_line_7f3872c6f3f79f6c69b4dec1'
    """
    digest = hashlib.sha256(f"{batch_id}:{index}".encode()).hexdigest()[:24]
    return f"batch_line_{digest}"


def answered(batch_id: str, index: int, custom_id: str, status: int,
             body: dict[str, Any]) -> dict[str, Any]:
    """The line of a request that ran: its status and body as the endpoint answered."""
    return {"id": line_id(batch_id, index), "custom_id": custom_id,
            "response": {"status_code": status, "request_id": request_id(batch_id, index),
                         "body": body},
            "error": None}


def unrun(batch_id: str, index: int, custom_id: str, code: str) -> dict[str, Any]:
    """The line of a request that never ran (``code``: EXPIRED or CANCELLED)."""
    return {"id": line_id(batch_id, index), "custom_id": custom_id, "response": None,
            "error": {"code": code, "message": UNRUN[code]}}


def error_body(message: str, type_: str, *, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """An error as OpenAI's endpoints answer it: a failed line's response body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
