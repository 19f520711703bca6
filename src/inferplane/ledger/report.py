"""Usage reports: cost, energy, carbon and water per group, per million tokens, and over time.

Plain bookkeeping, no SQL: the store streams the records of a time window
(:meth:`~inferplane.ledger.store.Store.records`, the columns in :data:`COLUMNS`) and
:func:`aggregate` folds them in one pass into overall totals, groups along one or more
dimensions, and hourly bins that :meth:`Report.series` rolls up into points for plots.

A group whose dimension has no value (no tenant, no region) has the key None: ``null`` in JSON,
``-`` in tables and CSV. Figures per million tokens count prompt plus completion tokens; those for
energy, CO2 and water count only the tokens of the records that have that figure, so a record
without an energy estimate neither adds joules nor dilutes the intensity (it is counted in
``energy_unknown_requests`` instead).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from inferplane.ledger.record import UsageRecord

DIMENSIONS = ("tenant", "model", "deployment", "provider", "region", "day")
ENERGY_METHODS = ("measured", "modelled", "estimated", "other")  # other: any method not named
J_PER_KWH = 3.6e6
HOURLY_SPAN_S = 2 * 86_400  # a series spanning less than this has a point per hour, else per day

# What the store hands over for a report: the dimensions but ``day`` (it comes from ``ts``) and
# the counted fields.
COLUMNS = (
    "ts", "tenant", "model", "deployment", "provider", "region", "status",
    "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
    "cost_usd", "energy_j", "energy_method", "co2_g", "water_l",
    "cache", "cache_saved_usd", "cache_saved_energy_j", "cache_saved_co2_g",
)

ReportRow = Mapping[Any, Any] | UsageRecord  # a record, or a row of COLUMNS by name


def per_mtok(amount: float, tokens: int) -> float | None:
    """``amount`` per million tokens; None when there are no tokens.

    >>> per_mtok(0.25, 500_000)
    0.5
    >>> per_mtok(3.0, 0) is None
    True
    """
    return amount * 1e6 / tokens if tokens else None


def day_of(ts: float) -> str:
    """The UTC date of a Unix time, YYYY-MM-DD.

    >>> day_of(1_704_153_599.9), day_of(1_704_153_600.0)  # one tick either side of midnight
    ('2024-01-01', '2024-01-02')
    """
    return _day_label(int(ts // 86_400))


@lru_cache(maxsize=4096)
def _day_label(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()


_RELATIVE = re.compile(r"(\d+(?:\.\d*)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400}


def parse_time(text: str, now: float) -> float:
    """A Unix time from an ISO date or date-time (UTC unless it has an offset) or from a span
    before ``now`` (``90s``, ``30m``, ``24h``, ``7d``, ``2w``).

    >>> parse_time("24h", now=1_700_000_000.0)
    1699913600.0
    >>> parse_time("2024-01-02", now=0.0)
    1704153600.0
    >>> parse_time("2024-01-02T01:00:00+01:00", now=0.0)
    1704153600.0
    >>> parse_time("yesterday", now=0.0)
    Traceback (most recent call last):
    ...
    ValueError: 'yesterday' is neither an ISO date/time nor a span like 7d, 24h, 30m
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value.lower())
    if relative is not None:
        return now - float(relative[1]) * _UNIT_S[relative[2]]
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO date/time nor a span like 7d, 24h, 30m"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


class _Values(NamedTuple):
    """The fields of one record a report reads, taken from it once."""

    ts: float
    keys: dict[str, str | None]
    status: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: float
    energy_j: float | None
    energy_method: str | None
    co2_g: float | None
    water_l: float | None
    cache: str | None
    saved: tuple[float, float, float]  # a cache hit: USD, joules, grams of CO2 it saved


def _attributes(obj: object) -> Callable[[str], Any]:
    def get(name: str) -> Any:
        return getattr(obj, name, None)

    return get


def _values(row: ReportRow) -> _Values:
    get: Callable[[str], Any] = row.get if isinstance(row, Mapping) else _attributes(row)
    ts = float(get("ts"))
    keys: dict[str, str | None] = {name: get(name) for name in DIMENSIONS[:-1]}
    keys["day"] = day_of(ts)
    return _Values(
        ts, keys, int(get("status")),
        int(get("prompt_tokens") or 0), int(get("completion_tokens") or 0),
        int(get("cached_tokens") or 0), int(get("reasoning_tokens") or 0),
        float(get("cost_usd") or 0.0),
        get("energy_j"), get("energy_method"), get("co2_g"), get("water_l"),
        get("cache"), (float(get("cache_saved_usd") or 0.0),
                       float(get("cache_saved_energy_j") or 0.0),
                       float(get("cache_saved_co2_g") or 0.0)),
    )


@dataclass(slots=True)
class Tally:
    """Counts and sums over a set of records.

    ``energy_tokens``, ``co2_tokens`` and ``water_tokens`` are the tokens of the records that
    have that figure: the denominators of its per-million-token intensity.
    """

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    energy_j: float = 0.0
    co2_g: float = 0.0
    water_l: float = 0.0
    energy_j_by_method: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(ENERGY_METHODS, 0.0)
    )
    energy_unknown_requests: int = 0
    energy_tokens: int = 0
    co2_tokens: int = 0
    water_tokens: int = 0
    cache_hits: int = 0  # requests answered by the response cache (exact or semantic)
    cache_semantic_hits: int = 0  # of which, answered for a paraphrase
    cache_misses: int = 0  # looked up there, served upstream
    cache_bypass: int = 0  # of a cached model, not looked up
    cache_saved_usd: float = 0.0  # what the hits' answers first cost
    cache_saved_energy_j: float = 0.0
    cache_saved_co2_g: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens (cached and reasoning tokens are already in them)."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, v: _Values) -> None:
        tokens = v.prompt_tokens + v.completion_tokens
        self.requests += 1
        self.errors += v.status >= 400
        self.prompt_tokens += v.prompt_tokens
        self.completion_tokens += v.completion_tokens
        self.cached_tokens += v.cached_tokens
        self.reasoning_tokens += v.reasoning_tokens
        self.cost_usd += v.cost_usd
        if v.energy_j is None:
            self.energy_unknown_requests += 1
        else:
            self.energy_j += v.energy_j
            self.energy_tokens += tokens
            method = v.energy_method if v.energy_method in ENERGY_METHODS else "other"
            self.energy_j_by_method[method] += v.energy_j
        if v.co2_g is not None:
            self.co2_g += v.co2_g
            self.co2_tokens += tokens
        if v.water_l is not None:
            self.water_l += v.water_l
            self.water_tokens += tokens
        if v.cache is not None:
            self._add_cache(v.cache, v.saved)

    def _add_cache(self, outcome: str, saved: tuple[float, float, float]) -> None:
        if outcome in ("hit-exact", "hit-semantic"):
            self.cache_hits += 1
            self.cache_semantic_hits += outcome == "hit-semantic"
            self.cache_saved_usd += saved[0]
            self.cache_saved_energy_j += saved[1]
            self.cache_saved_co2_g += saved[2]
        elif outcome == "miss":
            self.cache_misses += 1
        else:
            self.cache_bypass += 1

    @property
    def cache_hit_rate(self) -> float | None:
        """Hits among the requests that looked the cache up; None when none did."""
        looked = self.cache_hits + self.cache_misses
        return self.cache_hits / looked if looked else None

    def to_dict(self) -> dict[str, Any]:
        """The figures under stable keys, units in the names where there is one.

        >>> t = Tally()
        >>> t.add(_values({"ts": 0.0, "model": "m", "status": 200, "prompt_tokens": 600,
        ...                "completion_tokens": 400, "cost_usd": 0.002, "energy_j": 36.0,
        ...                "energy_method": "measured"}))
        >>> d = t.to_dict()
        >>> d["total_tokens"], d["cost_usd_per_mtok"], d["energy_kwh_per_mtok"]
        (1000, 2.0, 0.01)
        >>> d["co2_g_per_mtok"] is None, d["energy_unknown_requests"]
        (True, 0)
        """
        energy_kwh = self.energy_j / J_PER_KWH
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": self.cost_usd,
            "energy_j": self.energy_j,
            "co2_g": self.co2_g,
            "water_l": self.water_l,
            "cost_usd_per_mtok": per_mtok(self.cost_usd, self.total_tokens),
            "energy_kwh_per_mtok": per_mtok(energy_kwh, self.energy_tokens),
            "co2_g_per_mtok": per_mtok(self.co2_g, self.co2_tokens),
            "water_l_per_mtok": per_mtok(self.water_l, self.water_tokens),
            "energy_j_by_method": dict(self.energy_j_by_method),
            "energy_unknown_requests": self.energy_unknown_requests,
            "cache_hits": self.cache_hits,
            "cache_semantic_hits": self.cache_semantic_hits,
            "cache_misses": self.cache_misses,
            "cache_bypass": self.cache_bypass,
            "cache_hit_rate": self.cache_hit_rate,
            "cache_saved_usd": self.cache_saved_usd,
            "cache_saved_energy_j": self.cache_saved_energy_j,
            "cache_saved_co2_g": self.cache_saved_co2_g,
        }


@dataclass(slots=True)
class Bin:
    """What the records of one hour add up to, for a time series."""

    requests: int = 0
    cost_usd: float = 0.0
    energy_j: float = 0.0


class Point(NamedTuple):
    """One bucket of a time series: its start (UTC) and what the records in it add up to."""

    start: datetime
    requests: int
    cost_usd: float
    energy_j: float


class Series(NamedTuple):
    unit: Literal["hour", "day"]
    points: list[Point]


def series(hourly: Mapping[int, Bin]) -> Series:
    """Cost and energy per hour (``hourly`` keys: hours since the epoch), or per day when the
    hours span two days or more; buckets between the first and the last with nothing are zeros.

    >>> one = Bin(requests=1, cost_usd=0.5, energy_j=10.0)
    >>> s = series({473_000: one, 473_002: one})
    >>> s.unit, [(p.start.hour, p.cost_usd) for p in s.points]
    ('hour', [(8, 0.5), (9, 0.0), (10, 0.5)])
    >>> s = series({473_000: one, 473_001: one, 473_000 + 72: one})
    >>> s.unit, [(p.start.date().isoformat(), p.requests, p.energy_j) for p in s.points]
    ('day', [('2023-12-17', 2, 20.0), ('2023-12-18', 0, 0.0), ('2023-12-19', 0, 0.0), ('2023-12-20', 1, 10.0)])
    """  # noqa: E501
    if not hourly:
        return Series("hour", [])
    first, last = min(hourly), max(hourly)
    step = 1 if (last - first) * 3_600 < HOURLY_SPAN_S else 24
    buckets: dict[int, list[float]] = {}
    for hour, bin_ in hourly.items():
        bucket = buckets.setdefault(hour // step, [0, 0.0, 0.0])
        bucket[0] += bin_.requests
        bucket[1] += bin_.cost_usd
        bucket[2] += bin_.energy_j
    points = []
    for index in range(first // step, last // step + 1):
        requests, cost, energy = buckets.get(index, (0, 0.0, 0.0))
        start = datetime.fromtimestamp(0, UTC) + timedelta(hours=index * step)
        points.append(Point(start, int(requests), cost, energy))
    return Series("hour" if step == 1 else "day", points)


Key = str | None


def _by_key(item: tuple[Key, Tally]) -> tuple[bool, str]:
    return item[0] is None, item[0] or ""


@dataclass
class Report:
    """The records of a window folded: totals, groups per dimension, hourly bins."""

    totals: Tally = field(default_factory=Tally)
    groups: dict[str, dict[Key, Tally]] = field(default_factory=dict)
    hourly: dict[int, Bin] = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None

    def grouped(self, by: str) -> list[tuple[Key, Tally]]:
        """The groups along ``by``, in key order (days in time order), the None group last."""
        return sorted(self.groups[by].items(), key=_by_key)

    def series(self) -> Series:
        return series(self.hourly)

    def to_dict(self, by: str) -> dict[str, Any]:
        """``{"by", "groups": [{"key", figures...}], "totals": {figures...}}``."""
        return {
            "by": by,
            "groups": [{"key": key, **tally.to_dict()} for key, tally in self.grouped(by)],
            "totals": self.totals.to_dict(),
        }


def aggregate(rows: Iterable[ReportRow], by: str | Sequence[str] = "model") -> Report:
    """Fold ``rows`` (records, or mappings with the :data:`COLUMNS`) in one pass, grouping
    along each dimension in ``by`` (see :data:`DIMENSIONS`).

    >>> rows = [{"ts": 0.0, "model": "a", "status": 200, "prompt_tokens": 3, "cost_usd": 1.0},
    ...         {"ts": 1.0, "model": "b", "status": 500, "prompt_tokens": 1, "cost_usd": 0.5},
    ...         {"ts": 2.0, "model": "a", "status": 200, "prompt_tokens": 1, "cost_usd": 0.5}]
    >>> report = aggregate(rows, by="model")
    >>> [(key, t.requests, t.cost_usd) for key, t in report.grouped("model")]
    [('a', 2, 1.5), ('b', 1, 0.5)]
    >>> report.totals.requests, report.totals.errors, report.totals.prompt_tokens
    (3, 1, 5)
    """
    dimensions = (by,) if isinstance(by, str) else tuple(dict.fromkeys(by))
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"cannot group by {unknown[0]!r}: choose from {', '.join(DIMENSIONS)}")
    report = Report(groups={d: {} for d in dimensions})
    totals, groups, hourly = report.totals, report.groups, report.hourly
    first, last = float("inf"), float("-inf")
    for row in rows:
        v = _values(row)
        totals.add(v)
        for dimension in dimensions:
            key = v.keys[dimension]
            tally = groups[dimension].get(key)
            if tally is None:
                tally = groups[dimension][key] = Tally()
            tally.add(v)
        hour = int(v.ts // 3_600)
        bin_ = hourly.get(hour)
        if bin_ is None:
            bin_ = hourly[hour] = Bin()
        bin_.requests += 1
        bin_.cost_usd += v.cost_usd
        bin_.energy_j += v.energy_j or 0.0
        first, last = min(first, v.ts), max(last, v.ts)
    if totals.requests:
        report.first_ts, report.last_ts = first, last
    return report
