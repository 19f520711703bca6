"""The usage records against the ``ledger.batch`` entries that cover them, for ``audit
verify``: the thin I/O around :mod:`inferplane.audit.records`.

Streams the batch entries in pages and fetches the records of about :data:`IDS_PER_QUERY` of
them at a time by id (never the whole table), checks each batch in order and stops at the
first that differs. Then it counts the records stored since the oldest one a batch covers:
more than the batches account for means rows were added by hand, and a second pass names
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, func, select

from inferplane.audit import store
from inferplane.audit.entries import LEDGER_BATCH, EntryError, decode
from inferplane.audit.records import Row, added_message, batch_ids, check_batch
from inferplane.audit.verify import Report
from inferplane.ledger.store import FLOAT_COLUMNS, usage_records

ENTRIES_PAGE = 200  # batch entries read at a time
IDS_PER_QUERY = 5_000  # record ids fetched by one query
MOST_NAMED = 10  # added records named at most


@dataclass
class _Walk:
    """What the walk over the batches learned: for the check of added records."""

    stored: int = 0  # rows found for the batches' ids (a record in two batches: twice)
    oldest: float | None = None  # the oldest ts among them
    # (the newest ts among its records, its index) of each batch, in index order
    batches: list[tuple[float, int]] = field(default_factory=list)


Batch = tuple[int, list[str], dict[str, object]]  # an entry's index, record ids, data


def _batches(engine: Engine) -> Iterator[Batch]:
    """The ``ledger.batch`` entries, in index order, read a page at a time."""
    start = 0
    while True:
        with engine.connect() as c:
            page = store.read_kind_after(c, LEDGER_BATCH, start, ENTRIES_PAGE)
        for row in page:
            try:
                data = dict(decode(row.leaf_input).data)
            except EntryError:  # the tree walk names it
                continue
            yield row.index, batch_ids(data), data
        if len(page) < ENTRIES_PAGE:
            return
        start = page[-1].index + 1


def _groups(batches: Iterator[Batch]) -> Iterator[list[Batch]]:
    """Consecutive batches grouped until they name :data:`IDS_PER_QUERY` records: what one
    query fetches, whatever the batches' sizes."""
    group: list[Batch] = []
    count = 0
    for batch in batches:
        group.append(batch)
        count += len(batch[1])
        if count >= IDS_PER_QUERY:
            yield group
            group, count = [], 0
    if group:
        yield group


def _rows(c: Connection, ids: list[str]) -> dict[str, Row]:
    found: dict[str, Row] = {}
    for i in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[i:i + IDS_PER_QUERY]
        query = select(usage_records).where(usage_records.c.id.in_(chunk))
        for r in c.execute(query).mappings():  # names as plain str (orjson's keys)
            found[str(r["id"])] = {str(name): value for name, value in r.items()}
    return found


def verify_records(engine: Engine, report: Report) -> None:
    """Check every batch's records against its digest, then look for records no batch
    covers; findings go to ``report`` (the first batch that differs names the entry)."""
    walk = _Walk()
    for group in _groups(_batches(engine)):
        with engine.connect() as c:
            found = _rows(c, [i for _, ids, _ in group for i in ids])
        for index, ids, data in group:
            finding = check_batch(index, data, found, FLOAT_COLUMNS)
            if finding is not None:
                report.bad(index, finding.message())
                report.records = list(finding.ids)
                return
            times = [float(found[i]["ts"]) for i in ids]
            walk.stored += len(ids)
            if times:
                walk.batches.append((max(times), index))
                walk.oldest = min(min(times), walk.oldest if walk.oldest is not None
                                  else min(times))
    _check_added(engine, walk, report)


def _check_added(engine: Engine, walk: _Walk, report: Report) -> None:
    if walk.oldest is None:  # no batch yet: nothing tells which records the log covers
        return
    t, since = usage_records, walk.oldest
    with engine.connect() as c:
        total = int(c.execute(select(func.count()).select_from(t).where(t.c.ts >= since))
                    .scalar_one())
    if total <= walk.stored:
        return
    covered = {i for _, ids, _ in _batches(engine) for i in ids}
    added: list[tuple[float, str]] = []
    with engine.connect() as c:
        query = select(t.c.id, t.c.ts).where(t.c.ts >= since).order_by(t.c.ts)
        for record_id, ts in c.execute(query):
            if str(record_id) not in covered:
                added.append((float(ts), str(record_id)))
                if len(added) >= MOST_NAMED:
                    break
    if not added:
        return
    # named after the first batch that stored records as late as the first one added
    entry = next((index for newest, index in walk.batches if newest >= added[0][0]),
                 walk.batches[-1][1])
    report.bad(entry, added_message(entry, [i for _, i in added]))
    report.records = [i for _, i in added]
