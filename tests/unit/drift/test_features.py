"""What one request contributes: its prompt's script or code, refusals, outcome classes."""

from __future__ import annotations

import pytest

from inferplane.drift.features import SCRIPT_VALUES, code_like, outcome, refused, script_of


@pytest.mark.parametrize(("text", "script"), [
    ("What is the capital of France?", "latin"),
    ("Qu'est-ce que la photosynthèse ?", "latin"),
    ("Почему небо голубое?", "cyrillic"),
    ("ما هي عاصمة فرنسا؟", "arabic"),
    ("東京の天気はどうですか", "kana"),
    ("서울의 날씨는 어때요?", "hangul"),
    ("Τι ώρα είναι;", "greek"),  # noqa: RUF001
    ("北京是中国的首都", "han"),
    ("नमस्ते, आप कैसे हैं?", "devanagari"),
    ("", "none"),
    ("42 + 17 = ?", "none"),
])
def test_script_of_prose(text: str, script: str) -> None:
    assert script_of(text) == script
    assert script in SCRIPT_VALUES


@pytest.mark.parametrize("text", [
    "def add(a, b):\n    return a + b\n",
    "function f(x) { return x * 2; }\nconst y = f(3);",
    "Fix this:\n```\nprint('hi')\n```",
    "SELECT name FROM users WHERE id = 3;\nSELECT 1;",
    "#include <stdio.h>\nint main() { printf(\"hi\"); }",
])
def test_code_is_code(text: str) -> None:
    assert code_like(text)
    assert script_of(text) == "code"


@pytest.mark.parametrize("text", [
    "How do I bake bread at home without yeast?",
    "Tell me about the history of the Roman empire, in two paragraphs.",
    "Is it true that (most) cats dislike water?",
])
def test_prose_is_not_code(text: str) -> None:
    assert not code_like(text)


@pytest.mark.parametrize(("completion", "finish", "expected"), [
    ("I'm sorry, but I can't help with that.", "stop", True),
    ("I cannot assist with this request.", "stop", True),
    ("As an AI, I do not have opinions.", "stop", True),
    ("Sure! Here is the recipe.", "stop", False),
    ("The sorry state of affairs is that I can't stop.", "stop", False),
    ("", "content_filter", True),
    ("", None, False),
])
def test_refused(completion: str, finish: str | None, expected: bool) -> None:
    assert refused(completion, finish) is expected


def test_outcome_classes() -> None:
    assert [outcome(s) for s in (200, 400, 404, 429, 499, 500, 503, 302)] == [
        "ok", "client_error", "client_error", "client_error", "cancelled", "server_error",
        "server_error", "server_error"]
