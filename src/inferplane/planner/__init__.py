"""Capacity planner: which accelerator and layout serve a model cheapest under an SLO.

Pure functions over the catalogs in ``inferplane/data`` (``catalog``): weight and KV memory
(``weights``, ``attention``), per-step time rooflines (``roofline``, ``interconnect``, ``moe``,
``speculative``), continuous-batching queueing (``serving``, ``queueing``), power and carbon
(``power``), the layout search (``layout``; ``plan`` gives a ``CapacityPlan``) and calibration
against measurements (``calibration``); besides, numeric precisions (``precision``), SLOs
(``slo``) and a plan as JSON or a plot (``export``, ``plot``). The equations and their
assumptions: ``docs/planner.md``.
"""

from inferplane.planner.catalog import Catalog, Hardware, Model, load_catalog
from inferplane.planner.errors import PlannerError
from inferplane.planner.plan import CapacityPlan, Option, PlanRequest, plan

__all__ = [
    "CapacityPlan", "Catalog", "Hardware", "Model", "Option", "PlanRequest", "PlannerError",
    "load_catalog", "plan",
]
