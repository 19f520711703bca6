"""A batch's lifecycle and the share of capacity its lines may take: pure decisions.

Statuses, as OpenAI names them::

    validating -> in_progress -> finalizing -> completed
         |             |  \\-> (window over) -> finalizing -> expired
         v             v
       failed     cancelling -> finalizing -> cancelled

:func:`next_step` says what the runner does to a batch next, from its status and its lines'
states; :func:`room` how many more batch lines a model's deployments may take now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


#: Statuses the runner still has work in.
ACTIVE = (Status.VALIDATING, Status.IN_PROGRESS, Status.CANCELLING, Status.FINALIZING)
#: Statuses a cancel request moves to cancelling.
CANCELLABLE = (Status.VALIDATING, Status.IN_PROGRESS)

WINDOWS = {"24h": 24 * 3600.0}  # the completion windows a batch may ask for, in seconds


class Step(StrEnum):
    START = "start"  # check the lines against the endpoint; in_progress (or failed)
    RUN = "run"  # claim pending lines and run them
    EXPIRE = "expire"  # the window is over: the pending lines get batch_expired
    CANCEL = "cancel"  # the pending lines get batch_cancelled
    WAIT = "wait"  # lines are running (here or in another process)
    FINALIZE = "finalize"  # every line answered: write the output and error files


@dataclass(frozen=True, slots=True)
class Lines:
    """How many of a batch's lines are in each state."""

    pending: int = 0
    claimed: int = 0
    done: int = 0


def next_step(status: Status, lines: Lines, now: float, expires_at: float) -> Step:
    """What to do next to a batch the runner looks at.

    >>> next_step(Status.IN_PROGRESS, Lines(pending=3), 10.0, 100.0)
    <Step.RUN: 'run'>
    >>> next_step(Status.IN_PROGRESS, Lines(pending=3, claimed=1), 100.0, 100.0)
    <Step.EXPIRE: 'expire'>
    >>> next_step(Status.CANCELLING, Lines(claimed=1), 10.0, 100.0)
    <Step.WAIT: 'wait'>
    >>> next_step(Status.IN_PROGRESS, Lines(done=5), 10.0, 100.0)
    <Step.FINALIZE: 'finalize'>
    """
    if status == Status.VALIDATING:
        return Step.START
    if status == Status.FINALIZING:
        return Step.FINALIZE
    if lines.pending:
        if status == Status.CANCELLING:
            return Step.CANCEL
        return Step.EXPIRE if now >= expires_at else Step.RUN
    return Step.WAIT if lines.claimed else Step.FINALIZE


def final_status(cancelled: bool, expired: int) -> Status:
    """The status a finalized batch ends in: cancelled if it was being cancelled, expired if
    any line ran out of window, else completed.

    >>> final_status(False, 0), final_status(False, 2), final_status(True, 2)
    (<Status.COMPLETED: 'completed'>, <Status.EXPIRED: 'expired'>, <Status.CANCELLED: 'cancelled'>)
    """
    if cancelled:
        return Status.CANCELLED
    return Status.EXPIRED if expired else Status.COMPLETED


@dataclass(frozen=True, slots=True)
class Share:
    """A deployment's share for batch lines: at most ``max_concurrency`` at once; where it
    ``yields`` (a hosted upstream), one fewer for each interactive request in flight there
    (an embedded engine schedules interactive sequences first itself)."""

    max_concurrency: int
    in_flight: int  # every request in flight there now, batch lines included
    yields: bool


def room(shares: Sequence[Share], batch_in_flight: int) -> int:
    """How many more batch lines a model's deployments may take, ``batch_in_flight`` of this
    process's lines for the model already running on them.

    >>> room([Share(4, 0, True)], 0), room([Share(4, 3, True)], 1), room([Share(4, 6, True)], 2)
    (4, 1, 0)
    >>> room([Share(8, 9, False)], 1)  # an engine: its own scheduler puts interactive first
    7
    """
    interactive = max(0, sum(s.in_flight for s in shares) - batch_in_flight)
    limit = sum(s.max_concurrency for s in shares)
    backoff = min(interactive, sum(s.max_concurrency for s in shares if s.yields))
    return max(0, limit - backoff - batch_in_flight)
