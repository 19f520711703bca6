"""Model lifecycle, governed: versions and their stages, model cards, approvals, evaluation
results, staged rollouts and kills (docs/governance.md).

One concept per module:

- ``stages``: the stages of a version and which transitions the rules allow (pure);
- ``approvals``: the four-eyes rule (pure);
- ``cards``: Hugging Face model cards: parse, required-field check, render (pure);
- ``kills``: what a kill names and which deployments it stops (pure);
- ``holdback``: whether a deployment may receive requests, from a registry snapshot (pure);
- ``rollout``: which versions move where on a rollout or rollback (pure);
- ``canary`` and ``rollout_gates``: which requests a canary takes, and whether a candidate
  does as well as its incumbent on live traffic (pure); ``gate_window``: what the ledger's
  records of a window say about each (pure); ``watcher``: judges each candidate every few
  seconds, rolls back or promotes it;
- ``evaluation``: evaluation suites, their checks and scores (pure); ``eval_runner`` runs one
  through a gateway;
- ``history``: which version served a model at a moment (pure);
- ``tables``, ``registry`` and ``rollout_rows``: the SQL store and its I/O (SQLite or
  PostgreSQL);
- ``live``: the snapshot each gateway process serves from, refreshed when the registry's
  revision moves.
"""
