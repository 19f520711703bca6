"""Estimated energy of a hosted model's tokens, from the capacity planner's model.

Nobody outside a vendor can measure its GPUs, so a hosted request's energy is an estimate,
labelled ``estimated`` in the ledger. The assumption, stated in full:

* the model runs on the hardware class named by ``ASSUMED_HARDWARE`` (an H100), at its native
  precision, on the fewest chips that hold its weights, at a decode batch of ``ASSUMED_BATCH``;
* its shape is the planner catalog's model of the same name when there is one; otherwise the
  catalog model whose active parameter count is nearest, scaled linearly by active parameters
  (the price catalog gives public parameter counts of open-weight models);
* a model whose size is not public is taken to be the size of ``UNKNOWN_MODEL`` (a 70B-class
  dense model), unless the deployment says otherwise (``energy.active_params_b`` or
  ``energy.joules_per_token``).

Prompt tokens cost the prefill's energy per token (a 1,024-token prompt), output tokens a decode
step's energy over the batch, both accelerator energy only (the facility's PUE is applied with the
carbon figures). The planner reproduces ML.ENERGY's H100 measurements within about 20% (see
docs/planner.md); the assumptions above dominate the error for closed models.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from inferplane.planner.catalog import Model, load_catalog
from inferplane.planner.errors import PlannerError
from inferplane.planner.layout import Replica, min_layout_chips
from inferplane.planner.power import step_watts
from inferplane.planner.precision import precision
from inferplane.planner.roofline import prefill
from inferplane.planner.serving import decode_cost

ASSUMED_HARDWARE = "h100"
ASSUMED_BATCH = 64
ASSUMED_PROMPT = 1024
ASSUMED_CONTEXT = 2048
UNKNOWN_MODEL = "llama-3.1-70b"


@dataclass(frozen=True, slots=True)
class TokenEnergy:
    """Joules per prompt token and per output token, and how they were obtained."""

    prompt_j: float
    output_j: float
    basis: str

    def joules(self, prompt_tokens: int, output_tokens: int) -> float:
        return prompt_tokens * self.prompt_j + output_tokens * self.output_j


def _active_b(m: Model) -> float:
    return m.active_params_b or m.params_b or 0.0


@functools.cache
def planner_token_energy(model_id: str) -> TokenEnergy:
    """The planner's joules per token of one catalog model under the stated assumptions."""
    catalog = load_catalog()
    model, hw = catalog.find_model(model_id), catalog.find_hardware(ASSUMED_HARDWARE)
    quant = precision(model.native_quant)
    replica = Replica(model, hw, quant, quant, tp=min_layout_chips(model, hw, quant))
    cost = decode_cost(replica, ASSUMED_BATCH, ASSUMED_CONTEXT, None)
    pre = prefill(replica, ASSUMED_PROMPT)
    w_pre = step_watts(hw, pre)
    if cost.watts is None or w_pre is None:
        raise PlannerError(f"{hw.id} has no TDP: no energy estimate")
    output_j = replica.chips * cost.watts * cost.seconds / ASSUMED_BATCH
    prompt_j = replica.chips * w_pre * pre.occupancy_s / ASSUMED_PROMPT
    basis = (f"planner: {model.id} on {replica.chips}x {hw.id} {quant.name}, "
             f"batch {ASSUMED_BATCH}")
    return TokenEnergy(prompt_j, output_j, basis)


def nearest_model(active_params_b: float) -> Model:
    """The catalog model whose active parameter count is nearest (by ratio)."""
    models = [m for m in load_catalog().models.values() if _active_b(m) > 0]
    return min(models, key=lambda m: _ratio(_active_b(m), active_params_b))


def _ratio(a: float, b: float) -> float:
    """How many times larger the larger of two sizes is (1: equal)."""
    return max(a, b) / min(a, b)


def estimate_token_energy(model_name: str, active_params_b: float | None) -> TokenEnergy:
    """Estimated joules per token for a hosted model (see the module's docstring).

    >>> e = estimate_token_energy("llama-3.3-70b-versatile", None)
    >>> e.basis.startswith("planner: llama-3.1-70b")
    True
    >>> small = estimate_token_energy("some-8b", 8.0)
    >>> small.output_j < e.output_j
    True
    """
    catalog = load_catalog()
    for candidate in (model_name, model_name.rsplit("/", 1)[-1]):
        try:
            return planner_token_energy(catalog.find_model(candidate.lower()).id)
        except PlannerError:
            pass
    if active_params_b is None:
        base = planner_token_energy(UNKNOWN_MODEL)
        return TokenEnergy(base.prompt_j, base.output_j,
                           f"{base.basis}; size not public, assumed {UNKNOWN_MODEL}-class")
    reference = nearest_model(active_params_b)
    base = planner_token_energy(reference.id)
    scale = active_params_b / _active_b(reference)
    return TokenEnergy(base.prompt_j * scale, base.output_j * scale,
                       f"{base.basis}, scaled to {active_params_b:g}B active parameters")
