"""The response cache (docs/cache.md): answers kept per tenant, model, serving deployments and
whole request, replayed to identical requests in the client's protocol.

By module: ``key`` (the scope and the canonical request, pure), ``policy`` (read, store, the
outcome, pure), ``entry`` (what is kept, its bytes, its replay), ``recorder`` (an answer kept
as it streams), ``store`` (the backend contract), ``memory`` and ``redis_store`` (backends),
``turn`` (one request's lookup and store) and ``service`` (the gateway's cache, built from
the configuration). ``generation.py`` looks up before routing and stores at the end.
"""
