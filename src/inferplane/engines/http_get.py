"""One GET to an engine server over the gateway's pooled HTTP client: its health endpoint, its
metrics. Errors of the transport come back as :class:`OSError`, a late answer as
:class:`TimeoutError`."""

from __future__ import annotations

import asyncio

from inferplane.providers.http_client import ClientError, Pool

MAX_BODY_BYTES = 4 * 1024 * 1024  # a metrics page with many label sets is still far below


async def get(pool: Pool, url: str, timeout: float) -> tuple[int, bytes]:
    """The status and body of ``GET url``, within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            response = await pool.request("GET", url)
            parts: list[bytes] = []
            size = 0
            while chunk := await response.readany():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    response.close()
                    raise OSError(f"{url}: a body over {MAX_BODY_BYTES} bytes")
                parts.append(chunk)
            response.release()
            return response.status, b"".join(parts)
    except ClientError as exc:
        raise OSError(f"{url}: {exc}") from exc
