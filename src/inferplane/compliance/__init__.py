"""The EU AI Act duties Inferplane serves (docs/compliance.md), one concept per module:

- ``deadlines``: Art. 73's report deadlines per kind of serious incident (pure);
- ``retention``: Arts. 12, 19 and 26(6)'s six months of logs for a high-risk system (pure);
- ``scope``: which models, deployments and tenants make up one system (pure);
- ``incidents``: serious incidents in the store, each change an audit-log entry;
- ``slo``: error rate and TTFT percentiles of a set of usage records (pure);
- ``monitoring``: the post-market monitoring plan read from the Prometheus rules (pure);
- ``facts``: what the store holds about one system (the I/O shell);
- ``annex_iv``: the nine sections of Annex IV from those facts (pure);
- ``markdown`` and ``pdf``: the documentation written out;
- ``event_log``: the Art. 12 event log of a period, as JSON lines;
- ``incident_report``: an incident report draft with the facts of its window.
"""
