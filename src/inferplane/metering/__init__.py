"""Accounting: what a request cost, and the energy, carbon and water it took.

Pure functions from usage to dollars (``prices``; the packaged list prices in ``price_catalog``),
energy split among the requests an engine served (``energy``), the engines' cumulative energy
counters (``energy_counters``), what a deployment's hardware draws (``hardware``), estimated
energy of hosted tokens (``estimate``), carbon and water from the grid (``carbon``; live
intensity in ``intensity``), where token counts come from (``tokens``), and each deployment's
accounting resolved once at start (``meter``). See ``docs/accounting.md``.
"""
