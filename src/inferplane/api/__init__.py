"""HTTP only: the OpenAI- and Anthropic-compatible endpoints (parsing, rendering, streaming), the
admin API, health probes and metrics; what a request does is ``generation.py``."""
