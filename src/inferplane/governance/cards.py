"""Model cards in the Hugging Face format: YAML metadata between ``---`` lines (license,
base_model, datasets, model-index with evaluation results), then Markdown sections.

A card is parsed into its metadata and its known sections (:func:`parse`), checked for the
fields governance requires (:func:`missing`), and rendered back (:func:`render`) with the
environmental impact the ledger measured and the evaluations the registry holds filled in.
Headings are matched loosely (``## Out-of-Scope Use``, ``## Out of scope uses``), and a
section holding only Hugging Face's placeholder ``[More Information Needed]`` counts as empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from inferplane.config.governance import CARD_METADATA, CARD_SECTIONS
from inferplane.errors import InvalidRequest

TITLES = {
    "intended_use": "Intended use",
    "out_of_scope_use": "Out-of-scope use",
    "limitations": "Limitations",
    "risks": "Risks",
    "training_data": "Training data",
    "evaluation": "Evaluation",
    "environmental_impact": "Environmental impact",
}
_ALIASES = {
    "intendeduse": "intended_use", "intendeduses": "intended_use", "uses": "intended_use",
    "directuse": "intended_use", "outofscopeuse": "out_of_scope_use",
    "outofscopeuses": "out_of_scope_use", "limitations": "limitations",
    "risks": "risks", "biasandrisks": "risks", "risksandbiases": "risks",
    "biasrisksandlimitations": "risks", "risksandlimitations": "risks",
    "trainingdata": "training_data", "evaluation": "evaluation",
    "evaluationresults": "evaluation", "environmentalimpact": "environmental_impact",
}
_PLACEHOLDER = "[more information needed]"
_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^#{1,3}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
MAX_CARD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Card:
    metadata: Mapping[str, Any] = field(default_factory=dict)
    sections: Mapping[str, str] = field(default_factory=dict)  # known key -> Markdown
    title: str | None = None


def _key(heading: str) -> str | None:
    return _ALIASES.get(re.sub(r"[^a-z]", "", heading.lower()))


def parse(text: str) -> Card:
    """The card in ``text``; raises InvalidRequest on a card that cannot be read.

    >>> card = parse("---\\nlicense: apache-2.0\\n---\\n# M\\n## Intended Uses\\nChat.\\n")
    >>> card.metadata["license"], card.sections["intended_use"], card.title
    ('apache-2.0', 'Chat.', 'M')
    """
    if len(text.encode()) > MAX_CARD_BYTES:
        raise InvalidRequest(f"A model card is at most {MAX_CARD_BYTES} bytes.", param="card")
    metadata: dict[str, Any] = {}
    body = text
    front = _FRONT.match(text)
    if front is not None:
        try:
            loaded = yaml.safe_load(front.group(1))
        except yaml.YAMLError as exc:
            raise InvalidRequest(f"The card's YAML metadata cannot be read: {exc}",
                                 param="card") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InvalidRequest("The card's YAML metadata must be a mapping.", param="card")
        metadata = dict(loaded or {})
        body = text[front.end():]
    sections: dict[str, str] = {}
    title = None
    matches = list(_HEADING.finditer(body))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        content = body[match.end():end].strip()
        if match.group(0).startswith("# ") and title is None:
            title = match.group(1)
            continue
        key = _key(match.group(1))
        if key is not None and content:
            sections[key] = (sections[key] + "\n\n" + content) if key in sections else content
    return Card(metadata, sections, title)


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip()) and value.strip().lower() != _PLACEHOLDER
    if isinstance(value, list | dict):
        return bool(value)
    return True


def missing(card: Card | None, required: Sequence[str]) -> list[str]:
    """The ``required`` fields ``card`` lacks, in order (all of them when there is no card).

    >>> missing(parse("---\\nlicense: mit\\n---\\n## Limitations\\n[More Information Needed]"),
    ...         ["license", "limitations", "risks"])
    ['limitations', 'risks']
    """
    if card is None:
        return list(required)
    out = []
    for name in required:
        value = card.metadata.get(name) if name in CARD_METADATA else card.sections.get(name)
        if not _filled(value):
            out.append(name)
    return out


@dataclass(frozen=True, slots=True)
class Footprint:
    """What the ledger measured for a version: requests, tokens, energy and carbon."""

    requests: int = 0
    tokens: int = 0
    energy_kwh: float = 0.0
    measured_kwh: float = 0.0  # the part of energy_kwh measured (not modelled or estimated)
    co2_g: float = 0.0


@dataclass(frozen=True, slots=True)
class EvalResult:
    suite: str
    metric: str
    score: float
    passed: bool


def environmental_impact(footprint: Footprint) -> str:
    """The environmental impact section, from the ledger.

    >>> environmental_impact(Footprint(10, 2000, 0.002, 0.001, 0.8)).split("; ")[1]
    '1 kWh per 1M tokens, 400 g CO2e per 1M tokens.'
    """
    f = footprint
    if f.requests == 0:
        return "No request has been served by this version yet."
    text = (f"Measured by Inferplane's ledger over {f.requests:,} requests ({f.tokens:,} tokens): "
            f"{f.energy_kwh:.4g} kWh ({f.measured_kwh:.4g} kWh measured, the rest modelled or "
            f"estimated), {f.co2_g:.4g} g CO2e")
    if f.tokens:
        per = 1_000_000 / f.tokens
        text += (f"; {f.energy_kwh * per:.4g} kWh per 1M tokens, "
                 f"{f.co2_g * per:.4g} g CO2e per 1M tokens")
    return text + "."


def model_index(name: str, results: Sequence[EvalResult]) -> list[dict[str, Any]]:
    """The ``model-index`` metadata of the registry's evaluation results."""
    return [{"name": name, "results": [
        {"task": {"type": "text-generation"}, "dataset": {"name": r.suite, "type": r.suite},
         "metrics": [{"type": r.metric, "value": r.score, "verified": False}]}
        for r in results]}]


def render(card: Card | None, version: str, footprint: Footprint,
           results: Sequence[EvalResult] = ()) -> str:
    """The card as Hugging Face Markdown: its metadata (with ``model-index`` from
    ``results`` when there are any), every known section in order, the environmental impact
    from ``footprint``."""
    card = card or Card()
    metadata = dict(card.metadata)
    if results:
        metadata["model-index"] = model_index(version, results)
    parts = []
    if metadata:
        parts.append("---\n" + yaml.safe_dump(metadata, sort_keys=False).strip() + "\n---")
    parts.append(f"# {card.title or version}")
    sections = {**card.sections, "environmental_impact": environmental_impact(footprint)}
    for key in CARD_SECTIONS:
        body = sections.get(key) or "[More Information Needed]"
        parts.append(f"## {TITLES[key]}\n\n{body}")
    return "\n\n".join(parts) + "\n"
