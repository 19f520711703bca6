"""Arts. 12, 19(1) and 26(6): a high-risk system's automatically generated logs are kept at
least six months. A configuration that keeps the ledger or the audit log shorter while a
system is marked high-risk is refused; one that keeps them long enough says so. Pure.
"""

from __future__ import annotations

from inferplane.config import Config

MIN_DAYS = 183  # six months, rounded up: no six-month span is longer


def _kept(days: int | None) -> str:
    return "forever" if days is None else f"{days} days"


def retention_problem(config: Config) -> str | None:
    """The one-line refusal when a high-risk system's logs would be kept too short."""
    high = [s.name for s in config.systems if s.high_risk]
    if not high:
        return None
    short = [f"{name}.retention_days is {days}" for name, days in
             (("ledger", config.ledger.retention_days), ("audit", config.audit.retention_days))
             if days is not None and days < MIN_DAYS]
    if not short:
        return None
    return (f"system {', '.join(high)} is high-risk and its logs must be kept at least six "
            f"months (EU AI Act Arts. 12, 19, 26(6)), but {' and '.join(short)}: set "
            f"retention_days to {MIN_DAYS} or more, or leave it out (keep forever)")


def retention_notice(config: Config) -> str | None:
    """What a gateway says at start when it serves a high-risk system."""
    high = [s.name for s in config.systems if s.high_risk]
    if not high:
        return None
    return (f"high-risk system(s) {', '.join(high)}: ledger kept "
            f"{_kept(config.ledger.retention_days)}, audit log kept "
            f"{_kept(config.audit.retention_days)} (at least {MIN_DAYS} days required)")
