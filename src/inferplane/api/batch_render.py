"""Files and batches as OpenAI's API shows them (``object: "file"``, ``object: "batch"``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from inferplane.batch.store import StoredFile
from inferplane.batch.tables import TIMES


def file_object(f: StoredFile) -> dict[str, Any]:
    return {"id": f.id, "object": "file", "bytes": f.bytes, "created_at": int(f.created_at),
            "filename": f.filename, "purpose": f.purpose, "status": "processed",
            "expires_at": None, "status_details": None}


def _at(value: float | None) -> int | None:
    return None if value is None else int(value)


def batch_object(row: dict[str, Any]) -> dict[str, Any]:
    errors = row["errors"]
    return {
        "id": row["id"], "object": "batch", "endpoint": row["endpoint"],
        "errors": None if errors is None else {"object": "list", "data": orjson.loads(errors)},
        "input_file_id": row["input_file_id"], "completion_window": row["completion_window"],
        "status": row["status"], "output_file_id": row["output_file_id"],
        "error_file_id": row["error_file_id"], "created_at": int(row["created_at"]),
        "expires_at": int(row["expires_at"]),
        **{f"{name}_at": _at(row[f"{name}_at"]) for name in TIMES},
        "request_counts": {"total": row["total"], "completed": row["completed"],
                           "failed": row["failed"]},
        "metadata": None if row["metadata"] is None else orjson.loads(row["metadata"]),
    }


def page(data: Sequence[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """One page of a cursor list (``after`` the last id for the next)."""
    return {"object": "list", "data": list(data),
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": has_more}
