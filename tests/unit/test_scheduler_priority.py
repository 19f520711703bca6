"""The engine scheduler's priorities: interactive sequences are admitted and scheduled before
batch lines, and batch lines leave a slot free for interactive ones."""

from __future__ import annotations

from inferplane.engines.scheduler import BATCH_CHUNK, Scheduler, Sequence, Work


def seq(seq_id: str, prompt_len: int, *, batch: bool = False) -> Sequence:
    return Sequence(seq_id, list(range(100, 100 + prompt_len)), 4, batch=batch)


def ids(work: list[Work]) -> list[str]:
    return [w.seq.id for w in work]


def finish_prefill(sched: Scheduler) -> None:
    for item in sched.plan():
        Scheduler.advance(item)
        if item.wants_logits:
            item.seq.next_token = 7


def test_batch_lines_leave_a_slot_free_for_interactive_ones() -> None:
    sched = Scheduler(n_slots=3, batch_tokens=64)
    for i in range(4):
        sched.submit(seq(f"b{i}", 3, batch=True))
    sched.plan()
    assert sorted(sched.running) == ["b0", "b1"]  # the third slot stays free
    assert sched.waiting == 2
    sched.submit(seq("i0", 3))
    work = sched.plan()
    assert "i0" in sched.running and "i0" in ids(work)


def test_a_waiting_interactive_sequence_is_admitted_before_earlier_batch_lines() -> None:
    sched = Scheduler(n_slots=2, batch_tokens=64, reserved=0)
    sched.submit(seq("b0", 3, batch=True))
    sched.submit(seq("b1", 3, batch=True))
    sched.submit(seq("b2", 3, batch=True))
    sched.submit(seq("i0", 3))
    sched.plan()
    assert sorted(sched.running) == ["b0", "i0"]
    sched.remove("b0")
    sched.submit(seq("i1", 3))
    sched.plan()
    assert sorted(sched.running) == ["i0", "i1"]  # b1 and b2 still wait
    assert sched.waiting == 2


def test_interactive_prefill_comes_first_when_the_budget_is_short() -> None:
    sched = Scheduler(n_slots=4, batch_tokens=10, reserved=0)
    sched.submit(seq("b0", 8, batch=True))
    sched.submit(seq("i0", 8))
    work = sched.plan()
    assert [(w.seq.id, len(w.tokens)) for w in work] == [("i0", 8)]
    for item in work:
        Scheduler.advance(item)
    assert [(w.seq.id, len(w.tokens)) for w in sched.plan()] == [("b0", 8)]


def test_an_interactive_prefill_has_the_step_to_itself() -> None:
    sched = Scheduler(n_slots=4, batch_tokens=64, reserved=0)
    sched.submit(seq("b0", 3, batch=True))
    sched.submit(seq("b1", 5, batch=True))
    finish_prefill(sched)  # both batch prompts in, each with a token to decode
    sched.submit(seq("i0", 4))
    assert ids(sched.plan()) == ["i0"]  # no batch decode in the step that prefills it
    sched.submit(seq("b2", 3, batch=True))
    finish_prefill(sched)  # i0's prompt was in: the batch lines decode and prefill again
    assert sorted(ids(sched.plan())) == ["b0", "b1", "b2", "i0"]


def test_interactive_work_comes_before_batch_decode_when_the_budget_is_short() -> None:
    sched = Scheduler(n_slots=4, batch_tokens=2, reserved=0)
    sched.submit(seq("b0", 1, batch=True))
    sched.submit(seq("b1", 1, batch=True))
    finish_prefill(sched)  # both batch prompts in, each with a token to decode
    sched.submit(seq("i0", 1))
    work = sched.plan()
    assert ids(work) == ["i0"]  # its prefill
    for item in work:
        Scheduler.advance(item)
        item.seq.next_token = 7
    work = sched.plan()  # i0 decodes first; one batch line gets the rest
    assert "i0" in ids(work) and len(work) == 2
    # in slot order within the step, as llama.cpp decodes consecutive slots in one pass
    assert [w.seq.slot for w in work] == sorted(w.seq.slot for w in work)


def test_batch_lines_alone_use_every_slot_but_the_reserved_one() -> None:
    sched = Scheduler(n_slots=1, batch_tokens=64)
    sched.submit(seq("b0", 3, batch=True))
    sched.plan()
    assert list(sched.running) == ["b0"]  # one slot: a batch line may still run


def test_a_batch_prompt_is_prefilled_in_short_chunks_and_an_interactive_one_whole() -> None:
    sched = Scheduler(n_slots=3, batch_tokens=64, reserved=0)
    sched.submit(seq("b0", BATCH_CHUNK * 2 + 3, batch=True))
    sizes = []
    while sched.running.get("b0") is None or sched.running["b0"].prefilling:
        work = sched.plan()
        sizes.append([len(w.tokens) for w in work])
        for item in work:
            Scheduler.advance(item)
    assert sizes == [[BATCH_CHUNK], [BATCH_CHUNK], [3]]
    sched.submit(seq("i0", BATCH_CHUNK * 2 + 3))
    assert [len(w.tokens) for w in sched.plan()] == [BATCH_CHUNK * 2 + 3]
