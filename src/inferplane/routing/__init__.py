"""Which deployment serves a request, and what happens when it fails.

What routing reads off a request (``request``: its size, prefix and the client's limits), model
aliases to the ordered deployments a request will try (``router``, its ``Plan``), the
candidates and hard constraints (``candidate``, ``constraints``), the ordering policies
(``policy``), each deployment's live health and circuit breaker (``health``), when to retry
(``retry``) and trying a plan's deployments in turn (``dispatch``).
"""
