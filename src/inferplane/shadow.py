"""Shadow traffic: a model's shadow version gets a copy of a sample of the model's live
requests (the rollout's percent), each sent once the live answer is complete, in a task of its
own that never touches the client's response. Its answer is discarded; its ledger record
(``shadow_of``: the live request's id) is kept under the same tenant, for the rollout's gates.
Shadow requests pass no admission (they count against no limit or budget) and are capped per
process: beyond ``governance.rollout.shadow_concurrency`` at once, copies are dropped and
counted."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from inferplane.errors import InferplaneError
from inferplane.governance.canary import Split, takes
from inferplane.own_requests import drain
from inferplane.request_accounting import CLIENT_CLOSED, Accounting
from inferplane.routing.dispatch import Attempts
from inferplane.routing.request import RouteRequest

if TYPE_CHECKING:
    from inferplane.ledger.record import UsageRecord
    from inferplane.routing.router import Router

log = logging.getLogger("inferplane.shadow")


class Shadow:
    """Each gateway process's shadow sender."""

    def __init__(self, router: Router, record: Callable[[UsageRecord], None],
                 shadows: Callable[[], Mapping[str, Split]], concurrency: int) -> None:
        self._router = router
        self._record = record
        self._shadows = shadows  # model -> its shadow version (governance/live.py keeps it)
        self._concurrency = concurrency
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.dropped = 0

    def mirror(self, primary: Accounting, route: RouteRequest) -> None:
        """Copy ``primary`` (complete) to its model's shadow version when the sample takes it."""
        shadows = self._shadows()
        if not shadows or primary.request is None:
            return
        model = self._router.model(route.model).name
        shadow = shadows.get(model)
        if shadow is None or not takes(shadow.percent, model, f"request:{primary.id}"):
            return
        if len(self._tasks) >= self._concurrency:
            self.dropped += 1
            log.warning("shadow copy of %s to %s dropped: %d shadow requests in flight "
                        "(%d dropped so far)", primary.id, shadow.version, len(self._tasks),
                        self.dropped)
            return
        self.sent += 1
        acct = Accounting(id=f"shadow-{uuid.uuid4().hex}", endpoint=primary.endpoint,
                          model=primary.model, stream=primary.stream, request=primary.request,
                          principal=primary.principal, shadow_of=primary.id)
        task = asyncio.create_task(self._send(acct, route, shadow),
                                   name=f"inferplane-shadow-{primary.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, acct: Accounting, route: RouteRequest, shadow: Split) -> None:
        status: int = CLIENT_CLOSED
        error: str | None = "shadow_cancelled"
        events = None
        try:
            plan = self._router.shadow_plan(route, shadow.deployments)
            assert acct.request is not None
            acct.target, started, events = await Attempts(
                self._router, plan, acct.attempts).open(acct.request, acct)
            acct.started(started.prompt_tokens)
            await drain(events, acct)
            status, error = 200, None
        except InferplaneError as exc:
            status, error = exc.status, exc.code or exc.type
        except Exception:
            log.exception("shadow request %s failed", acct.id)
            status, error = 500, "shadow_failed"
        finally:
            if events is not None:
                await events.aclose()
            record = acct.record(status, error)
            self._record(record if record.version else replace(record, version=shadow.version))

    async def stop(self) -> None:
        """Cancel the shadow requests in flight (each still records what it did)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
