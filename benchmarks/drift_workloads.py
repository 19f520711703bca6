"""Synthetic traffic for the drift benchmark: finished requests as the gateway hands them to the
drift monitor, from a baseline (English how-to questions, mostly answered, a few cut or failed)
and from shifts of it, one feature at a time where that can be done.

Prompts are drawn from a pool of distinct texts per kind (made once from templates and word
lists written here), so their embeddings are computed once; token counts, finish reasons,
statuses and refusals are drawn per request from the kind's distributions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from inferplane.drift.features import EndedRequest

POOL = 500  # distinct prompts per kind
MAX_TOKENS = 512

VERBS = ["clean", "repair", "paint", "store", "water", "check", "move", "wash", "replace",
         "insulate", "prune", "measure", "sand", "seal", "organise", "heat"]
THINGS = ["garden", "bicycle", "kitchen floor", "roof", "car battery", "fence", "lawn",
          "window frame", "bathroom tiles", "wooden table", "garage door", "balcony plants",
          "rain gutter", "leather boots", "tent", "oven"]
WHEN = ["before winter", "after a storm", "on a small budget", "without special tools",
        "in a rented flat", "every spring", "for the first time", "when it is humid",
        "in one afternoon", "safely with children around"]
ASK = ["How do I {v} the {t} {w}?", "What is the best way to {v} a {t} {w}?",
       "Can you explain how to {v} my {t} {w}?", "Is it a good idea to {v} the {t} {w}?",
       "What do I need to {v} a {t} {w}?", "Why should I {v} my {t} {w}?"]
MONEY_ASK = ["How do I {v} {t} {w}?", "What is the best way to {v} {t} {w}?",
             "Can you explain how to {v} {t} {w}?", "Is it a good idea to {v} {t} {w}?"]
EXTRA = ["I tried it last year and it did not go well.", "My neighbour says it is easy.",
         "I have about two hours and a basic toolbox.", "The instructions I found online "
         "contradict each other.", "Please give the steps in order and say what can go wrong.",
         "I would rather not hire anyone for this.", "It is an old house, built around 1960.",
         "Keep it short, but do not skip safety advice."]
MONEY_VERBS = ["invest", "save", "budget", "refinance", "insure", "declare", "split",
               "transfer", "hedge", "allocate"]
MONEY = ["my pension", "a mortgage", "index funds", "an emergency fund", "student loans",
         "a savings account", "capital gains", "a car loan", "company shares", "rent income"]
CODE_NAMES = ["parse", "merge", "total", "render", "fetch", "retry", "index", "cache",
              "sort", "flush"]
CODE = ["def {a}_{b}(items):\n    return [x for x in items if x.{a}()]",
        "Why does this fail?\n```python\nfor i in range(len({a})):\n    {b}[i] += 1\n```",
        "function {a}{B}(list) {{\n  return list.map(x => x.{b}).filter(Boolean);\n}}",
        "SELECT {a}, count(*) FROM {b} GROUP BY {a} HAVING count(*) > 3;",
        "fix: int {a}(int* {b}, int n) {{ for (int i = 0; i < n; i++) {b}[i]++; return n; }}",
        "class {B}{A}:\n    def __init__(self):\n        self.{a} = []\n    def {b}(self): pass"]
RU_VERBS = ["почистить", "покрасить", "починить", "хранить", "поливать", "проверить",
            "заменить", "утеплить"]
RU_THINGS = ["сад", "велосипед", "крышу", "забор", "газон", "окно", "ванную", "духовку"]
RU = ["Как {v} {t} перед зимой?", "Как лучше всего {v} {t} без инструментов?",
      "Можно ли {v} {t} самому?", "Что нужно, чтобы {v} {t} за один день?"]
ES_VERBS = ["limpiar", "pintar", "reparar", "guardar", "regar", "revisar", "cambiar", "sellar"]
ES_THINGS = ["el jardín", "la bicicleta", "el tejado", "la valla", "el césped", "la ventana",
             "el baño", "el horno"]
ES = ["¿Cómo puedo {v} {t} antes del invierno?", "¿Cuál es la mejor manera de {v} {t}?",
      "¿Es buena idea {v} {t} yo mismo?", "¿Qué necesito para {v} {t} en una tarde?"]
REFUSAL = "I'm sorry, but I can't help with that request."
ANSWER = "Sure. Here are the steps, in order:"


@dataclass(frozen=True)
class Traffic:
    """What a kind of traffic looks like: its prompts and its answers' distributions."""

    prompts: Callable[[random.Random], str]
    length: float = 0.08  # share cut at max_tokens
    errors: float = 0.02  # share failing (half 429, half 500)
    refusals: float = 0.02
    answer_log_mean: float = 5.0  # completion tokens ~ lognormal(mean, 0.6)


def english(rng: random.Random) -> str:
    return rng.choice(ASK).format(v=rng.choice(VERBS), t=rng.choice(THINGS), w=rng.choice(WHEN))


def longer(rng: random.Random) -> str:
    return " ".join([english(rng), *rng.sample(EXTRA, rng.randint(3, 5))])


def money(rng: random.Random) -> str:
    return rng.choice(MONEY_ASK).format(v=rng.choice(MONEY_VERBS), t=rng.choice(MONEY),
                                        w=rng.choice(WHEN))


def code(rng: random.Random) -> str:
    a, b = rng.sample(CODE_NAMES, 2)
    return rng.choice(CODE).format(a=a, b=b, A=a.title(), B=b.title())


def russian(rng: random.Random) -> str:
    return rng.choice(RU).format(v=rng.choice(RU_VERBS), t=rng.choice(RU_THINGS))


def spanish(rng: random.Random) -> str:
    return rng.choice(ES).format(v=rng.choice(ES_VERBS), t=rng.choice(ES_THINGS))


BASELINE = Traffic(english)
#: The shifts measured, by name: each changes the baseline in one way.
SHIFTS: dict[str, Traffic] = {
    "code prompts": Traffic(code),
    "Russian prompts": Traffic(russian),
    "Spanish prompts": Traffic(spanish),
    "another topic (money)": Traffic(money),
    "prompts 3x longer": Traffic(longer),
    "answers cut: 8% -> 25% length": Traffic(english, length=0.25),
    "errors: 2% -> 8%": Traffic(english, errors=0.08),
    "refusals: 2% -> 10%": Traffic(english, refusals=0.10),
    "answers 2x longer": Traffic(english, answer_log_mean=5.0 + 0.69),
}


def pools(seed: int) -> dict[Callable[[random.Random], str], list[str]]:
    """:data:`POOL` distinct prompts of each kind (or as many as the templates make)."""
    out: dict[Callable[[random.Random], str], list[str]] = {}
    for make in {t.prompts for t in (BASELINE, *SHIFTS.values())}:
        rng = random.Random(seed)
        seen: dict[str, None] = {}
        for _ in range(POOL * 20):
            seen[make(rng)] = None
            if len(seen) >= POOL:
                break
        out[make] = list(seen)
    return out


def request(traffic: Traffic, pool: list[str], rng: random.Random) -> EndedRequest:
    """One finished request of ``traffic``."""
    prompt = rng.choice(pool)
    prompt_tokens = int(len(prompt.split()) * 1.3) + 24 + rng.randint(0, 6)  # + system prompt
    roll = rng.random()
    if roll < traffic.errors:
        status = 429 if roll < traffic.errors / 2 else 500
        return EndedRequest("chat", None, prompt_tokens, 0, None, status, prompt, "")
    if rng.random() < traffic.refusals:
        return EndedRequest("chat", None, prompt_tokens, 12, "stop", 200, prompt, REFUSAL)
    if rng.random() < traffic.length:
        return EndedRequest("chat", None, prompt_tokens, MAX_TOKENS, "length", 200, prompt, ANSWER)
    tokens = min(MAX_TOKENS - 1, int(rng.lognormvariate(traffic.answer_log_mean, 0.6)) + 1)
    return EndedRequest("chat", None, prompt_tokens, tokens, "stop", 200, prompt, ANSWER)
