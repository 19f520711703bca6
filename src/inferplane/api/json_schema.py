"""Whether a JSON Schema a client sent is one (draft 2020-12, as OpenAI's structured outputs
read them), answered as the 400 that names where it is wrong."""

from __future__ import annotations

from typing import Any

from inferplane.errors import InvalidRequest


def check_schema(schema: dict[str, Any], param: str) -> None:
    import jsonschema  # loaded on the first schema: most requests carry none

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise InvalidRequest(f"Invalid '{param}': {exc.message}"
                             + (f" (at {where})" if where else ""), param=param) from exc
