"""Stop-string matching over streamed text pieces."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import assume, example, given, settings, strategies as st

from inferplane.engines.stopper import Stopper


def run(stops: tuple[str, ...], pieces: list[str]) -> tuple[list[str], str, bool]:
    """Feed every piece; the emitted pieces, then what flush returns, and whether it stopped."""
    stopper = Stopper(stops)
    emitted = [stopper.feed(p) for p in pieces]
    return emitted, stopper.flush(), stopper.stopped


def truncate_at_first_stop(text: str, stops: tuple[str, ...]) -> str:
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return text[: min(hits)] if hits else text


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in pairwise(bounds)]


def test_stop_split_across_pieces() -> None:
    emitted, flushed, stopped = run(("END",), ["hello E", "N", "D and more", "ignored"])
    assert emitted == ["hello ", "", "", ""]
    assert stopped
    assert flushed == ""


def test_stop_inside_one_piece_drops_it_and_everything_after() -> None:
    emitted, _, stopped = run(("###",), ["a###b"])
    assert emitted == ["a"]
    assert stopped


def test_stop_at_very_start() -> None:
    emitted, flushed, stopped = run(("x",), ["xyz"])
    assert emitted == [""]
    assert stopped
    assert flushed == ""


def test_earliest_of_several_stops_wins() -> None:
    emitted, _, stopped = run(("World", "lo"), ["Hello World"])
    assert emitted == ["Hel"]
    assert stopped


def test_earliest_of_several_stops_wins_across_pieces() -> None:
    emitted, _, stopped = run(("STOP", "\n\n"), ["one\n", "\ntwo STOP"])
    assert "".join(emitted) == "one"
    assert stopped


def test_partial_match_that_is_not_a_stop_is_emitted_later() -> None:
    stopper = Stopper(("END",))
    assert stopper.feed("the E") == "the "
    assert stopper.feed("N") == ""
    assert stopper.feed("TRY") == "ENTRY"
    assert not stopper.stopped


def test_partial_match_overlapping_a_real_stop() -> None:
    stopper = Stopper(("aab",))
    assert stopper.feed("xa") == "x"
    assert stopper.feed("a") == ""
    assert stopper.feed("a") == "a"  # "aaa": the first a can no longer start the stop
    assert stopper.feed("b") == ""
    assert stopper.stopped


def test_flush_returns_the_held_text_once() -> None:
    stopper = Stopper(("END",))
    assert stopper.feed("done EN") == "done "
    assert stopper.flush() == "EN"
    assert stopper.flush() == ""
    assert not stopper.stopped


def test_no_stops_pass_through_unchanged() -> None:
    stopper = Stopper(())
    pieces = ["a", "", "END", "<eos>", "\n\n"]
    assert [stopper.feed(p) for p in pieces] == pieces
    assert stopper.flush() == ""
    assert not stopper.stopped


def test_empty_stop_strings_are_ignored() -> None:
    emitted, flushed, stopped = run(("", ""), ["abc", "def"])
    assert emitted == ["abc", "def"]
    assert flushed == ""
    assert not stopped
    emitted, flushed, stopped = run(("", "c"), ["abc", "def"])
    assert emitted == ["ab", ""]
    assert stopped


def test_feed_after_stop_returns_nothing() -> None:
    stopper = Stopper(("!",))
    assert stopper.feed("hi! there") == "hi"
    assert stopper.feed("more") == ""
    assert stopper.flush() == ""


def test_multibyte_text() -> None:
    emitted, flushed, stopped = run(("。終",), ["日本語。", "終わり"])
    assert "".join(emitted) + flushed == "日本語"
    assert stopped


def test_result_does_not_depend_on_how_text_is_split() -> None:
    stops = ("\nUser:", "User")
    whole, _, _ = run(stops, ["\nUser: hi"])
    pieces, _, _ = run(stops, list("\nUser: hi"))
    assert "".join(whole) == ""
    assert "".join(pieces) == "".join(whole)


text_chars = st.sampled_from("abc \n")
stop_strings = st.text(text_chars, max_size=4)


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(text_chars, max_size=40),
    stops=st.lists(stop_strings, max_size=4).map(tuple),
    cuts=st.lists(st.integers(0, 1000), max_size=12),
)
@example(text="xxENDyy", stops=("END",), cuts=[3, 4])
@example(text="aaab", stops=("aab",), cuts=[1, 2, 3])
@example(text="aaba", stops=("b", "aba"), cuts=[3])
def test_emitted_plus_flush_is_the_text_cut_at_the_first_stop(
    text: str, stops: tuple[str, ...], cuts: list[int]
) -> None:
    emitted, flushed, stopped = run(stops, split(text, cuts))
    expected = truncate_at_first_stop(text, stops)
    assert "".join(emitted) + flushed == expected
    assert stopped == (expected != text)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(text_chars, max_size=40),
    stops=st.lists(stop_strings, min_size=1, max_size=4).map(tuple),
)
def test_holds_back_no_more_than_a_stop_prefix(text: str, stops: tuple[str, ...]) -> None:
    """After each character, everything but a possible stop prefix has been emitted."""
    assume(any(stops))
    stopper = Stopper(stops)
    out = ""
    for i, ch in enumerate(text):
        out += stopper.feed(ch)
        if stopper.stopped:
            break
        held = text[len(out) : i + 1]
        assert text[: i + 1].startswith(out)
        assert len(held) < max(len(s) for s in stops)
        assert held == "" or any(s.startswith(held) for s in stops)
