"""The continuous-batching scheduler: admission, step planning, chunked prefill, removal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from inferplane.engines.scheduler import Scheduler, Sequence, Work


def seq(seq_id: str, prompt_len: int, max_new: int = 4) -> Sequence:
    return Sequence(seq_id, list(range(100, 100 + prompt_len)), max_new)


def summary(work: list[Work]) -> list[tuple[str, list[int], int, bool]]:
    return [(w.seq.id, w.tokens, w.pos, w.wants_logits) for w in work]


def step(sched: Scheduler, sampled: int = 7) -> list[Work]:
    """Plan, advance every item, and give each item with logits a sampled next token."""
    work = sched.plan()
    for item in work:
        Scheduler.advance(item)
    for item in work:
        if item.wants_logits:
            item.seq.next_token = sampled
    return work


@pytest.mark.parametrize(("n_slots", "batch_tokens"), [(0, 8), (1, 0), (-1, 1)])
def test_rejects_non_positive_sizes(n_slots: int, batch_tokens: int) -> None:
    with pytest.raises(ValueError):
        Scheduler(n_slots, batch_tokens)


def test_admits_fifo_into_free_slots_and_keeps_the_rest_waiting() -> None:
    sched = Scheduler(n_slots=2, batch_tokens=64)
    seqs = [seq(f"s{i}", 3) for i in range(4)]
    for s in seqs:
        sched.submit(s)
    assert len(sched) == 4
    assert sched.running == {}  # nothing is admitted before the first plan

    work = sched.plan()

    assert list(sched.running) == ["s0", "s1"]
    assert {seqs[0].slot, seqs[1].slot} == {0, 1}
    assert seqs[2].slot == -1 and seqs[3].slot == -1
    assert [w.seq.id for w in work] == ["s0", "s1"]
    assert len(sched) == 4


def test_first_plan_prefills_whole_prompts_with_logits_on_their_last_token() -> None:
    sched = Scheduler(n_slots=4, batch_tokens=64)
    a, b = seq("a", 3), seq("b", 5)
    sched.submit(a)
    sched.submit(b)

    assert summary(sched.plan()) == [
        ("a", a.prompt, 0, True),
        ("b", b.prompt, 0, True),
    ]


def test_decode_comes_first_then_prompt_chunks_within_batch_tokens() -> None:
    sched = Scheduler(n_slots=4, batch_tokens=6)
    gen1, gen2 = seq("gen1", 2), seq("gen2", 2)
    sched.submit(gen1)
    sched.submit(gen2)
    step(sched, sampled=11)  # both prompts fit: 4 tokens
    assert gen1.next_token == 11 and gen2.next_token == 11
    late = seq("late", 10)
    sched.submit(late)

    work = sched.plan()

    assert summary(work) == [
        ("gen1", [11], 2, True),
        ("gen2", [11], 2, True),
        ("late", late.prompt[:4], 0, False),
    ]
    assert sum(len(w.tokens) for w in work) == 6


def test_generating_sequence_without_next_token_is_not_decoded() -> None:
    sched = Scheduler(n_slots=2, batch_tokens=8)
    a = seq("a", 2)
    sched.submit(a)
    sched.plan()
    a.n_fed = 2  # prompt fed, but no token sampled yet
    assert a.next_token is None
    assert sched.plan() == []


def test_decode_budget_smaller_than_generating_sequences() -> None:
    sched = Scheduler(n_slots=3, batch_tokens=2)
    seqs = [seq(f"s{i}", 1) for i in range(3)]
    for s in seqs:
        sched.submit(s)
    step(sched)  # prompts: 1 + 1 tokens, the third gets nothing yet
    assert [s.n_fed for s in seqs] == [1, 1, 0]

    work = sched.plan()

    assert summary(work) == [("s0", [7], 1, True), ("s1", [7], 1, True)]


def test_long_prompt_is_prefilled_in_chunks_with_logits_only_on_the_last() -> None:
    sched = Scheduler(n_slots=1, batch_tokens=4)
    long = seq("long", 10)
    sched.submit(long)

    plans = []
    while long.prefilling:
        plans.append(summary(step(sched, sampled=42)))

    assert plans == [
        [("long", long.prompt[0:4], 0, False)],
        [("long", long.prompt[4:8], 4, False)],
        [("long", long.prompt[8:10], 8, True)],
    ]
    assert long.n_fed == 10
    assert long.next_token == 42
    assert summary(sched.plan()) == [("long", [42], 10, True)]


def test_prompt_exactly_batch_tokens_long_is_one_chunk() -> None:
    sched = Scheduler(n_slots=1, batch_tokens=4)
    s = seq("s", 4)
    sched.submit(s)
    assert summary(sched.plan()) == [("s", s.prompt, 0, True)]


def test_advance_partial_chunk_keeps_prefilling() -> None:
    s = seq("s", 5)
    s.slot = 0
    Scheduler.advance(Work(s, s.prompt[:3], 0, False))
    assert s.n_fed == 3
    assert s.prefilling


def test_advance_last_chunk_clears_next_token() -> None:
    s = seq("s", 5)
    s.n_fed, s.next_token = 3, 99  # a stale value must not survive into generation
    Scheduler.advance(Work(s, s.prompt[3:], 3, True))
    assert s.n_fed == 5
    assert not s.prefilling
    assert s.next_token is None


def test_advance_decode_consumes_the_next_token() -> None:
    s = seq("s", 2)
    s.n_fed, s.next_token = 2, 13
    Scheduler.advance(Work(s, [13], 2, True))
    assert s.n_fed == 3
    assert s.next_token is None


def test_remove_running_frees_its_slot_for_the_first_waiting() -> None:
    sched = Scheduler(n_slots=2, batch_tokens=64)
    a, b, c, d = seq("a", 2), seq("b", 2), seq("c", 2), seq("d", 2)
    for s in (a, b, c, d):
        sched.submit(s)
    step(sched)
    freed = b.slot

    assert sched.remove("b") is b

    assert len(sched) == 3
    assert "b" not in sched.running
    work = sched.plan()
    assert list(sched.running) == ["a", "c"]
    assert c.slot == freed
    assert d.slot == -1
    assert summary(work) == [("a", [7], 2, True), ("c", c.prompt, 0, True)]


def test_remove_waiting_drops_it_from_the_queue() -> None:
    sched = Scheduler(n_slots=1, batch_tokens=64)
    a, b, c = seq("a", 2), seq("b", 2), seq("c", 2)
    for s in (a, b, c):
        sched.submit(s)
    sched.plan()

    assert sched.remove("b") is b

    assert b.slot == -1
    assert len(sched) == 2
    assert sched.remove("a") is a
    sched.plan()
    assert list(sched.running) == ["c"]  # b never gets the slot


def test_remove_unknown_returns_none_and_changes_nothing() -> None:
    sched = Scheduler(n_slots=1, batch_tokens=64)
    sched.submit(seq("a", 2))
    sched.submit(seq("b", 2))
    sched.plan()

    assert sched.remove("nope") is None

    assert len(sched) == 2
    assert list(sched.running) == ["a"]


def test_remove_twice_does_not_free_the_slot_twice() -> None:
    sched = Scheduler(n_slots=1, batch_tokens=64)
    a, b, c = seq("a", 2), seq("b", 2), seq("c", 2)
    for s in (a, b, c):
        sched.submit(s)
    sched.plan()
    assert sched.remove("a") is a
    assert sched.remove("a") is None
    sched.plan()
    assert list(sched.running) == ["b"]  # one slot, so c must still wait
    assert c.slot == -1


@settings(max_examples=200, deadline=None)
@given(
    n_slots=st.integers(1, 4),
    batch_tokens=st.integers(1, 12),
    jobs=st.lists(
        st.tuples(st.integers(1, 30), st.integers(1, 6)), min_size=1, max_size=10
    ),
    cancels=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 9)), max_size=4),
)
def test_simulated_engine_loop_runs_everything_to_completion(
    n_slots: int,
    batch_tokens: int,
    jobs: list[tuple[int, int]],
    cancels: list[tuple[int, int]],
) -> None:
    """Drive the scheduler as the worker does: plan -> advance -> sample -> finish/cancel."""
    sched = Scheduler(n_slots, batch_tokens)
    seqs = [seq(f"s{i}", p, m) for i, (p, m) in enumerate(jobs)]
    for s in seqs:
        sched.submit(s)
    finished: set[str] = set()
    cancelled: set[str] = set()
    fed: dict[str, list[int]] = {s.id: [] for s in seqs}
    steps = 0
    limit = sum(p + m for p, m in jobs)
    while len(sched):
        for at, index in cancels:
            if at == steps and index < len(seqs):
                target = seqs[index]
                gone = target.id in finished or target.id in cancelled
                assert (sched.remove(target.id) is None) == gone
                if not gone:
                    cancelled.add(target.id)
        steps += 1
        assert steps <= limit, "the scheduler stopped making progress"
        work = sched.plan()
        if not len(sched):
            assert work == []
            break
        assert work, "sequences remain but nothing was planned"
        assert sum(len(w.tokens) for w in work) <= batch_tokens
        slots = [s.slot for s in sched.running.values()]
        assert len(slots) == len(set(slots))
        assert all(0 <= slot < n_slots for slot in slots)
        assert len(sched.running) <= n_slots
        assert len({w.seq.id for w in work}) == len(work)  # one item per sequence per step
        for w in work:
            assert w.seq.id in sched.running
            assert w.pos == w.seq.n_fed  # contiguous positions in the KV cache
            assert w.tokens
        for w in work:
            fed[w.seq.id] += w.tokens
            Scheduler.advance(w)
        for w in work:
            s = w.seq
            if not w.wants_logits:
                assert s.prefilling
                continue
            assert not s.prefilling
            s.generated += 1
            if s.generated >= s.max_new_tokens:
                assert sched.remove(s.id) is s
                finished.add(s.id)
            else:
                s.next_token = 1000 + s.generated
    assert finished | cancelled == {s.id for s in seqs}
    assert not finished & cancelled
    for s in seqs:
        expected = s.prompt + [1000 + k for k in range(1, s.max_new_tokens)]
        assert s.reused < len(s.prompt)
        got = s.prompt[: s.reused] + fed[s.id]  # a reused prefix was in the slot's cache
        if s.id in finished:
            assert got == expected  # every other token fed once, in order
        else:
            assert got == expected[: len(got)]


def test_lowest_free_slot_is_taken_first() -> None:
    sched = Scheduler(n_slots=4, batch_tokens=64)
    for name in "abcd":
        sched.submit(seq(name, 2))
    sched.plan()
    assert [sched.running[n].slot for n in "abcd"] == [0, 1, 2, 3]
    sched.remove("c")
    sched.remove("a")
    sched.submit(seq("e", 2))
    sched.submit(seq("f", 2))
    sched.plan()
    assert (sched.running["e"].slot, sched.running["f"].slot) == (0, 2)


def test_decode_tokens_are_in_increasing_slot_order() -> None:
    """llama.cpp batches one-token-per-sequence steps in one pass only in slot order."""
    sched = Scheduler(n_slots=4, batch_tokens=64)
    for name in "abcd":
        sched.submit(seq(name, 2))
    step(sched)  # prefill all four: each now has a next token
    sched.remove("a")
    sched.submit(seq("e", 2))
    step(sched)  # e takes slot 0 and prefills while b, c, d decode
    work = sched.plan()
    decode_slots = [w.seq.slot for w in work if len(w.tokens) == 1 and not w.seq.prefilling]
    assert decode_slots == sorted(decode_slots) == [0, 1, 2, 3]


class Trims:
    """A stand-in for the KV cache's trim: records calls, refuses partial trims if told."""

    def __init__(self, partial_ok: bool = True) -> None:
        self.calls: list[tuple[int, int]] = []
        self.partial_ok = partial_ok

    def __call__(self, slot: int, keep: int) -> bool:
        self.calls.append((slot, keep))
        return keep == 0 or self.partial_ok


def run_to_end(sched: Scheduler, s: Sequence) -> None:
    sched.submit(s)
    for item in sched.plan():
        Scheduler.advance(item)
    assert sched.remove(s.id) is s


def test_a_shared_prefix_goes_to_the_slot_that_holds_it() -> None:
    trims = Trims()
    sched = Scheduler(n_slots=4, batch_tokens=256, trim=trims)
    system = list(range(1, 41))  # a 40-token shared prefix
    other = Sequence("x", list(range(500, 540)), 4)
    sched.submit(other)  # takes slot 0
    sched.plan()
    run_to_end(sched, Sequence("a", [*system, 90, 91], 4))  # slot 1
    b = Sequence("b", [*system, 95, 96, 97], 4)
    sched.submit(b)
    work = sched.plan()
    assert b.slot == 1 and b.reused == 40 and b.n_fed == 40
    assert trims.calls == [(1, 40)]
    item = next(w for w in work if w.seq is b)
    assert item.tokens == [95, 96, 97] and item.pos == 40


def test_the_last_prompt_token_is_always_decoded_again() -> None:
    sched = Scheduler(n_slots=1, batch_tokens=256)
    prompt = list(range(1, 31))
    run_to_end(sched, Sequence("a", prompt, 4))
    again = Sequence("b", list(prompt), 4)
    sched.submit(again)
    [item] = sched.plan()
    assert again.reused == 29 and item.tokens == [30] and item.wants_logits


def test_a_short_shared_prefix_is_not_worth_a_slot() -> None:
    trims = Trims()
    sched = Scheduler(n_slots=2, batch_tokens=256, trim=trims)
    run_to_end(sched, Sequence("a", list(range(1, 11)), 4))  # slot 0, 10 tokens cached
    b = Sequence("b", [*range(1, 9), 77], 4)  # 8 shared tokens < MIN_REUSE
    sched.submit(b)
    sched.plan()
    assert b.slot == 1 and b.reused == 0 and trims.calls == []  # the empty slot, cache kept


def test_without_a_match_the_least_recently_released_cache_is_evicted() -> None:
    trims = Trims()
    sched = Scheduler(n_slots=2, batch_tokens=256, trim=trims)
    first, second = Sequence("a", list(range(100, 140)), 4), Sequence("b", list(range(200, 240)), 4)
    sched.submit(first)
    sched.submit(second)
    for item in sched.plan():
        Scheduler.advance(item)
    sched.remove("b")  # slot 1 released first
    sched.remove("a")  # slot 0 released last: the more recent cache
    c = Sequence("c", list(range(300, 340)), 4)
    sched.submit(c)
    sched.plan()
    assert c.slot == 1 and trims.calls == [(1, 0)]


def test_a_cache_that_cannot_be_trimmed_is_emptied() -> None:
    trims = Trims(partial_ok=False)
    sched = Scheduler(n_slots=1, batch_tokens=256, trim=trims)
    prompt = list(range(1, 41))
    run_to_end(sched, Sequence("a", prompt, 4))
    b = Sequence("b", [*prompt, 5], 4)
    sched.submit(b)
    [item] = sched.plan()
    assert trims.calls == [(0, 40), (0, 0)]
    assert b.reused == 0 and item.pos == 0 and item.tokens == b.prompt


def test_forgotten_caches_are_not_reused() -> None:
    sched = Scheduler(n_slots=2, batch_tokens=256)
    prompt = list(range(1, 41))
    run_to_end(sched, Sequence("a", prompt, 4))
    assert sched.forget_caches() == [0]
    b = Sequence("b", [*prompt, 5], 4)
    sched.submit(b)
    sched.plan()
    assert b.reused == 0


def test_load_figures_for_the_metrics() -> None:
    """Waiting, KV positions held by running sequences (a free slot's cache is not in use),
    and the prefix cache's lookups and hits in prompt tokens."""
    sched = Scheduler(n_slots=2, batch_tokens=256)
    system = list(range(1, 41))
    run_to_end(sched, Sequence("a", [*system, 90], 4))  # 41 looked up, none found
    assert (sched.prefix_queries, sched.prefix_hits, sched.kv_tokens()) == (41, 0, 0)
    b, c, d = (Sequence(i, [*system, 95, 96], 4) for i in "bcd")
    for s in (b, c, d):
        sched.submit(s)
    assert sched.waiting == 3
    for item in sched.plan():
        Scheduler.advance(item)
    assert sched.waiting == 1 and len(sched.running) == 2
    assert (sched.prefix_queries, sched.prefix_hits) == (41 + 42 + 42, 40)
    assert sched.kv_tokens() == 42 + 42
