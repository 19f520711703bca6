"""Polling a store's revision: how every gateway process learns of a change another made
(a revoked key, a kill) within one interval, whether or not Redis is configured."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def poll_forever(interval_s: float, refresh: Callable[[], Awaitable[None]], what: str,
                       log: logging.Logger) -> None:
    """Call ``refresh`` every ``interval_s`` until cancelled. While the store does not answer,
    the last view is kept and the problem logged once (and its end once)."""
    failing = False
    while True:
        await asyncio.sleep(interval_s)
        try:
            await refresh()
        except Exception as exc:  # the store is down: keep the last view, say so once
            if not failing:
                log.warning("cannot read %s from the store (%s); keeping the last view until "
                            "it answers", what, type(exc).__name__)
            failing = True
        else:
            if failing:
                log.info("reading %s from the store again", what)
            failing = False
