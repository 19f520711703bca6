"""Capacity planner: which accelerator and layout serve a model cheapest under an SLO.

Pure functions over the catalogs in ``inferplane/data`` (``catalog``): weight and KV memory
(``weights``, ``attention``), per-step time rooflines (``roofline``, ``interconnect``, ``moe``,
``speculative``), continuous-batching queueing (``serving``, ``queueing``), power and carbon
(``energy``), the layout search (``layout``, ``plan``) and calibration against measurements
(``calibration``). The equations and their assumptions: ``docs/planner.md``.
"""

from inferplane.planner.catalog import Catalog, Hardware, Model, load_catalog
from inferplane.planner.errors import PlannerError
from inferplane.planner.plan import Option, Plan, PlanRequest, plan

__all__ = [
    "Catalog", "Hardware", "Model", "Option", "Plan", "PlanRequest", "PlannerError",
    "load_catalog", "plan",
]
